"""Serves an ONNX export at the till over HTTP: photos in, ages and ID-check answers out.

  python scripts/serve.py --model=exported/ [--port=8080] [--host=127.0.0.1]
      [--threads=0] [--max_upload_mb=10]

--model is a folder written by `scripts/export.py --format=onnx`. POST a JPEG or PNG to
/v1/estimate (or open http://HOST:PORT/ in a browser); GET /healthz says the service is up.
Faces are framed as the run's training framed them, and the run's trust rules and ID-check
policy decide (see ageflax/serve/app.py). Needs only `pip install ageflax[serve]`: this
entry point imports neither JAX nor TensorFlow (its flags are parsed by `ageflax.cli.parsing`,
not `ageflax.cli.common`, which imports JAX).
"""

import socket

from absl import flags, logging

from ageflax.cli import parsing
from ageflax.core.errors import AgeflaxError

_MODEL = flags.DEFINE_string("model", None, "Folder written by scripts/export.py --format=onnx.",
                             required=True)
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every "
                            "interface).")
_PORT = flags.DEFINE_integer("port", 8080, "Port to listen on.", lower_bound=1,
                             upper_bound=65535)
_THREADS = flags.DEFINE_integer("threads", 0, "Photos estimated at once (each thread has its "
                                "own face detector); 0: one per CPU core.", lower_bound=0)
_MAX_UPLOAD_MB = flags.DEFINE_float("max_upload_mb", 10.0, "Larger uploads are refused (413).",
                                    lower_bound=0.001)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    parsing.exit_with(f"unexpected arguments: {' '.join(argv[1:])}")
  import cv2
  import uvicorn  # after the flags: --help needs no web stack

  from ageflax.serve.app import create_app

  # Each photo's face search runs on one core, photos side by side on --threads threads
  # (as the ONNX session does); OpenCV's own threads would only contend with them.
  cv2.setNumThreads(1)
  listening = _listening_socket(_HOST.value, _PORT.value)
  try:
    service = create_app(_MODEL.value, _MAX_UPLOAD_MB.value, _THREADS.value)
  except AgeflaxError as e:
    parsing.exit_with(str(e))
  logging.info("serving %s on http://%s:%d: %s", _MODEL.value, _HOST.value, _PORT.value,
               service.state.about)
  uvicorn.Server(uvicorn.Config(service, log_level="info")).run(sockets=[listening])


def _listening_socket(host: str, port: int) -> socket.socket:
  """The bound socket the service will answer on (bound before the model loads, so a port in
  use is one line at once)."""
  family = socket.AF_INET6 if ":" in host else socket.AF_INET
  try:
    return socket.create_server((host, port), family=family)
  except OSError as e:
    parsing.exit_with(f"--host={host} --port={port}: cannot listen there ({e.strerror})")


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  parsing.run(main, __name__)
