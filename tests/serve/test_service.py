"""The till service over HTTP with a stand-in ONNX export: faces framed as in training, the
answers, every bad upload refused with its 4xx, a bad model folder, the page, the load test."""

import io
import socket
import struct
import subprocess
import sys
import zlib

import cv2
import httpx
import numpy as np
import pytest
from conftest import REPO, error_line, found_face, run_entry_point
from PIL import Image
from serving import running_service, stand_in_age, write_stand_in_export

from ageflax.data import faces
from ageflax.serve import uploads

_TRAINING_STACK = ("jax", "jaxlib", "flax", "optax", "orbax", "tensorflow",
                   "tensorflow_datasets")


def _encoded(pixels: np.ndarray, image_format: str = "PNG", **options) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, image_format, **options)
  return buffer.getvalue()


def _post(url: str, body: bytes, content_type: str = "image/png") -> httpx.Response:
  return httpx.post(f"{url}/v1/estimate", content=body, headers={"Content-Type": content_type},
                    timeout=60)


def _png_declaring(width: int, height: int) -> bytes:
  """A well-formed PNG of a few hundred bytes whose header declares width x height pixels."""

  def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

  header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
          + chunk(b"IDAT", zlib.compress(b"\0" * 10000)) + chunk(b"IEND", b""))


def _pasted_into_a_scene(face: np.ndarray, left: int, top: int) -> np.ndarray:
  """A till frame: `face` grown 1.5x and pasted off centre into a grey 480x640 scene."""
  side = round(face.shape[0] * 1.5)
  scene = np.full((480, 640, 3), 110, np.uint8)
  scene[top:top + side, left:left + side] = cv2.resize(face, (side, side))
  return scene


@pytest.fixture(scope="module")
def service(tmp_path_factory):
  """The service of a stand-in export that frames faces ('align'), uploads up to 0.2 MB."""
  root = tmp_path_factory.mktemp("serve")
  model = write_stand_in_export(root / "model", mode="align")
  with running_service(model, "--max_upload_mb=0.2", "--threads=2", log=root / "log.txt") as url:
    yield url


def test_a_face_in_a_till_frame_is_framed_and_answered(service):
  face = found_face()
  scene = _pasted_into_a_scene(face, left=300, top=120)
  answer = _post(service, _encoded(scene)).json()
  assert len(answer["faces"]) == 1, answer
  found = answer["faces"][0]
  box = found["box"]
  assert box["x"] >= 300 - 20 and box["x"] + box["width"] <= 300 + 192 + 20  # 1.5 x 128
  assert box["y"] >= 120 - 20 and box["y"] + box["height"] <= 120 + 192 + 20
  framed = faces.FaceNormaliser(32).frame_all(scene)[0].image
  assert found["age"] == pytest.approx(stand_in_age(framed[None])[0], abs=1e-3)
  assert found["age_spread"] == 3.0 and 0 <= found["p_under_legal_age"] <= 1
  assert found["id_check"] == (found["age"] < 25 or found["reason"] is not None)
  assert answer["id_check"] == found["id_check"]
  assert answer["policy"] == "ID check when the estimate is under 25 (legal age 18; test rule)"
  assert answer["model"]["face_framing"] == "align" and answer["model"]["step"] == 7


def test_two_faces_are_answered_in_one_request(service):
  scene = _pasted_into_a_scene(found_face(0), left=20, top=100)
  second = _pasted_into_a_scene(found_face(1), left=400, top=100)
  scene[:, 320:] = second[:, 320:]
  answer = _post(service, _encoded(scene)).json()
  assert len(answer["faces"]) == 2, answer
  assert answer["id_check"] == any(face["id_check"] for face in answer["faces"])


def test_a_photo_without_a_face_asks_for_id(service):
  answer = _post(service, _encoded(np.full((240, 320, 3), 90, np.uint8))).json()
  assert answer["faces"] == []
  assert answer["id_check"] is True and answer["reason"] == "no face found"


def test_an_exif_rotated_photo_is_turned_upright(service):
  scene = _pasted_into_a_scene(found_face(), left=300, top=120)
  exif = Image.Exif()
  exif[0x0112] = 6  # shown turned 90 degrees clockwise: stored turned the other way
  stored = _encoded(np.ascontiguousarray(np.rot90(scene, 1)), "JPEG", quality=95, exif=exif)
  answer = _post(service, stored, "image/jpeg").json()
  assert len(answer["faces"]) == 1, answer
  box = answer["faces"][0]["box"]
  assert 280 <= box["x"] <= 520 and 100 <= box["y"] <= 340  # in the upright photo's pixels


@pytest.mark.parametrize("content_type, body, status, message", [
    ("image/jpeg", b"", 400, "empty body"),
    ("image/jpeg", b"just some text, no photo", 422, "not an image"),
    ("image/png", "gif", 422, "a GIF image: send a JPEG or PNG photo"),
    ("image/jpeg", "cut", 422, "truncated or corrupt JPEG"),
    ("image/png", "bomb", 422, "the image is 20000x20000, 400 megapixels, more than "
                               "till.max_image_megapixels=40"),
    ("image/png", "large", 413, "the upload is over --max_upload_mb=0.2 MB"),
    ("text/plain", b"hello", 415, "Content-Type 'text/plain'"),
    (None, b"hello", 415, "Content-Type '(none)'"),
    ("multipart/form-data; boundary=x", b"--x--\r\n", 400, "no file in the field 'photo'"),
])
def test_a_bad_upload_gets_its_4xx_and_the_service_goes_on(service, content_type, body,
                                                            status, message):
  photo = _encoded(np.full((64, 64, 3), 90, np.uint8), "JPEG")
  noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
  bodies = {
      "gif": _encoded(np.zeros((8, 8, 3), np.uint8), "GIF"),
      "cut": photo[:len(photo) // 2],
      "bomb": _png_declaring(20000, 20000),
      "large": _encoded(noise),
  }
  headers = {"Content-Type": content_type} if content_type else {}
  response = httpx.post(f"{service}/v1/estimate", content=bodies.get(body, body),
                        headers=headers, timeout=60)
  assert response.status_code == status, response.text
  assert message in response.json()["error"]
  assert httpx.get(f"{service}/healthz").json()["status"] == "ok"


def test_a_multipart_upload_gets_the_same_answer_as_the_raw_photo(service):
  scene = _encoded(_pasted_into_a_scene(found_face(), left=300, top=120))
  raw = _post(service, scene).json()
  form = httpx.post(f"{service}/v1/estimate", files={"photo": ("till.png", scene, "image/png")},
                    timeout=60).json()
  assert form == raw


def test_unknown_routes_answer_in_the_service_shape(service):
  assert httpx.get(f"{service}/nowhere").json() == {"error": "Not Found"}
  assert httpx.get(f"{service}/v1/estimate").status_code == 405


def test_the_manager_page_is_self_contained(service):
  response = httpx.get(service)
  assert response.status_code == 200 and response.headers["content-type"].startswith(
      "text/html")
  page = response.text
  assert "v1/estimate" in page and 'type="file"' in page and "<canvas" in page
  assert "http://" not in page and "https://" not in page and "src=" not in page.lower()


def test_the_load_test_prints_its_figures(service, tmp_path):
  photo = tmp_path / "till.png"
  photo.write_bytes(_encoded(_pasted_into_a_scene(found_face(), left=300, top=120)))
  result = run_entry_point(["scripts/load_test.py", f"--url={service}", f"--photo={photo}",
                            "--clients=2", "--requests=10"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "10 requests (0 failed)" in result.stdout and "by 2 clients" in result.stdout
  for figure in ("requests/s", "p50", "p99"):
    assert figure in result.stdout


def test_the_load_test_names_a_service_that_does_not_answer(tmp_path):
  photo = tmp_path / "till.png"
  photo.write_bytes(_encoded(np.zeros((8, 8, 3), np.uint8)))
  line = error_line(run_entry_point(["scripts/load_test.py", "--url=http://127.0.0.1:9",
                                     f"--photo={photo}"]))
  assert "--url=http://127.0.0.1:9: the service does not answer /healthz" in line


def test_a_bad_model_folder_is_one_line_naming_the_file(tmp_path):
  good = write_stand_in_export(tmp_path / "good")
  other = write_stand_in_export(tmp_path / "other")
  (other / "ageflax_export.json").write_text(
      (other / "ageflax_export.json").read_text().replace("ageflax-export-2", "ageflax-export-1"))
  no_model = write_stand_in_export(tmp_path / "no_model")
  (no_model / "model.onnx").unlink()
  (tmp_path / "empty").mkdir()
  cases = {
      tmp_path / "nowhere": f"{tmp_path / 'nowhere'}: no such folder",
      tmp_path / "empty": f"{tmp_path / 'empty' / 'ageflax_export.json'}: missing",
      other: f"{other / 'ageflax_export.json'}: not an ONNX export of format 'ageflax-export-2'",
      no_model: f"{no_model / 'model.onnx'}: missing",
  }
  for folder, message in cases.items():
    assert message in error_line(run_entry_point(["scripts/serve.py", f"--model={folder}"]))
  (good / "model.onnx").write_bytes(b"not onnx")
  assert "ONNX Runtime cannot load it" in error_line(
      run_entry_point(["scripts/serve.py", f"--model={good}"]))


def test_a_port_in_use_is_one_line(tmp_path):
  model = write_stand_in_export(tmp_path / "model")
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    line = error_line(run_entry_point(["scripts/serve.py", f"--model={model}",
                                       f"--port={port}"]))
  assert line.startswith(f"error: --host=127.0.0.1 --port={port}: cannot listen there")


def test_the_service_imports_no_training_stack():
  code = ("import sys, ageflax.serve.app, ageflax.cli.serve; "
          f"print(sorted(m for m in sys.modules if m.split('.')[0] in {_TRAINING_STACK}))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=True)
  assert result.stdout.strip() == "[]"


def test_the_resize_matches_training():
  """Pillow's float resize against training's tf.image.resize: the same pixels but for a
  rare rounding tie (one level)."""
  import tensorflow as tf

  from ageflax.data import tf_images

  rng = np.random.default_rng(0)
  for shape, size in (((480, 640), 32), ((40, 40), 32), ((20, 30), 32), ((101, 77), 64)):
    smooth = cv2.resize(rng.integers(0, 256, (shape[0] // 4 + 1, shape[1] // 4 + 1, 3),
                                     dtype=np.uint8), shape[::-1], interpolation=cv2.INTER_CUBIC)
    served = uploads.resize_like_training(smooth, size).astype(int)
    trained = tf_images.resize(tf.constant(smooth), size).numpy().astype(int)
    assert np.abs(served - trained).max() <= 1 and (served != trained).mean() < 0.01


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_corrupt_photos_are_refused_never_crash(image_format):
  """Bytes of a good photo overwritten at random places: decoded, or one UploadError."""
  rng = np.random.default_rng(0)
  exif = Image.Exif()
  exif[0x0112] = 6
  good = _encoded(found_face(), image_format, exif=exif)
  for _ in range(300):
    corrupt = bytearray(good)
    for at in rng.integers(0, len(good), int(rng.integers(1, 8))):
      corrupt[at] = int(rng.integers(0, 256))
    try:
      image = uploads.decode_photo(bytes(corrupt[:int(rng.integers(16, len(good) + 1))]), 40)
    except uploads.UploadError as e:
      assert e.status == 422 and "\n" not in e.message
    else:
      assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
