"""The HTTP API of the till service (FastAPI): routes, upload limits and errors as JSON.

  POST /v1/estimate  a JPEG or PNG body (Content-Type image/jpeg or image/png), or a
                     multipart upload with the photo in the field `photo`: every face's box,
                     age, age band and ID-check answer, and the photo's answer
  GET  /healthz      {"status": "ok", "model": ...}
  GET  /             the manager's page (`ageflax.serve.page`)

A bad upload gets a 4xx answer `{"error": "..."}` that names the problem (400 empty or
malformed, 413 over --max_upload_mb, 415 wrong Content-Type, 422 not a usable JPEG or PNG)
and the service goes on. Decoding, face detection and the model run on a thread pool, off
the event loop; the ONNX Runtime session is created once and shared.
"""

import asyncio
import concurrent.futures
import contextlib
import functools
import os

from absl import logging
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ageflax.serve import export_folder, page, uploads
from ageflax.serve.estimator import Estimator
from ageflax.serve.uploads import UploadError

PHOTO_FIELD = "photo"
_IMAGE_TYPES = ("image/jpeg", "image/png")
_MULTIPART = "multipart/form-data"


def create_app(model_dir: str, max_upload_mb: float = 10.0, threads: int = 0) -> FastAPI:
  """The service of the ONNX export in `model_dir` (read, and its session opened, now).

  Args:
    model_dir: folder written by `scripts/export.py --format=onnx`.
    max_upload_mb: larger request bodies are refused (413) before they are read whole.
    threads: photos estimated at once; 0: one per CPU core.
  """
  exported = export_folder.read_export(model_dir)
  estimator = Estimator(exported)
  executor = concurrent.futures.ThreadPoolExecutor(threads or os.cpu_count() or 1,
                                                   thread_name_prefix="estimate")

  @contextlib.asynccontextmanager
  async def lifespan(app: FastAPI):
    del app
    yield
    executor.shutdown(wait=False, cancel_futures=True)

  # No /docs pages: they load their scripts from a CDN a till network may not reach.
  app = FastAPI(title="ageflax till service", lifespan=lifespan, docs_url=None,
                redoc_url=None)
  answer = functools.partial(_answer, estimator)
  about = {"policy": exported.policy.describe(), "model": exported.describe()}
  app.state.about = about
  max_bytes = int(max_upload_mb * 1e6)

  @app.post("/v1/estimate")
  async def estimate(request: Request) -> JSONResponse:
    body = await _photo_bytes(request, max_bytes, max_upload_mb)
    result = await asyncio.get_running_loop().run_in_executor(executor, answer, body)
    return JSONResponse({**result, **about})

  @app.get("/healthz")
  async def healthz() -> dict:
    return {"status": "ok", "model": exported.describe()}

  @app.get("/", response_class=HTMLResponse)
  async def manager_page() -> str:
    return page.PAGE

  app.add_exception_handler(UploadError, _upload_error)
  app.add_exception_handler(HTTPException, _http_error)
  app.add_exception_handler(Exception, _internal_error)
  return app


def _answer(estimator: Estimator, body: bytes) -> dict:
  """Decodes and estimates one photo (on the thread pool)."""
  image = uploads.decode_photo(body, estimator.exported.till["max_image_megapixels"])
  return estimator.estimate(image)


async def _photo_bytes(request: Request, max_bytes: int, max_upload_mb: float) -> bytes:
  """The photo's file bytes of a raw or multipart upload, refused past `max_bytes`."""
  content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
  if content_type not in (*_IMAGE_TYPES, _MULTIPART):
    raise UploadError(415, f"Content-Type {content_type or '(none)'!r}: send image/jpeg, "
                      f"image/png, or {_MULTIPART} with the photo in the field {PHOTO_FIELD!r}")
  too_large = UploadError(413, f"the upload is over --max_upload_mb={max_upload_mb:g} MB")
  declared = request.headers.get("content-length", "")
  if declared.isdigit() and int(declared) > max_bytes:
    raise too_large
  chunks, received = [], 0
  async for chunk in request.stream():
    received += len(chunk)
    if received > max_bytes:
      raise too_large
    chunks.append(chunk)
  body = b"".join(chunks)
  return await _form_photo(request, body) if content_type == _MULTIPART else body


async def _form_photo(request: Request, body: bytes) -> bytes:
  """The file in the field `photo` of a multipart body already read (and size-checked)."""

  async def replay() -> dict:
    return {"type": "http.request", "body": body, "more_body": False}

  try:
    async with Request(request.scope, replay).form(max_files=1, max_fields=8) as form:
      photo = form.get(PHOTO_FIELD)
      if not isinstance(photo, UploadFile):
        raise UploadError(400, f"the multipart upload has no file in the field {PHOTO_FIELD!r}")
      return await photo.read()
  except HTTPException as e:
    raise UploadError(400, f"malformed multipart upload ({e.detail})") from None


async def _upload_error(request: Request, error: Exception) -> JSONResponse:
  del request
  assert isinstance(error, UploadError)
  logging.info("refused an upload (%d): %s", error.status, error.message)
  return JSONResponse({"error": error.message}, status_code=error.status)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
  """Starlette's own errors (404, 405) in the service's shape."""
  del request
  assert isinstance(error, HTTPException)
  return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                      headers=getattr(error, "headers", None))


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
  """A bug, not a bad upload: the traceback goes to the log, the client gets one line."""
  logging.error("internal error on %s %s", request.method, request.url.path,
                exc_info=(type(error), error, error.__traceback__))
  return JSONResponse({"error": "internal error; see the service's log"}, status_code=500)
