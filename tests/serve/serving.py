"""What the service tests share: a contract-sized ONNX export and the real server in a process."""

import contextlib
import json
import pathlib
import subprocess
import sys
import time

import httpx
import numpy as np
import onnx
from conftest import REPO, free_port, subprocess_env
from onnx import TensorProto, helper, numpy_helper

# The stand-in model's age is a line of the mean pixel value, so its answers are known.
BRIGHTNESS_SLOPE, AGE_AT_BLACK = 0.25, 5.0


def stand_in_age(images: np.ndarray) -> np.ndarray:
  """What the stand-in model answers for uint8 images [N, S, S, 3]."""
  return images.astype(np.float64).mean(axis=(1, 2, 3)) * BRIGHTNESS_SLOPE + AGE_AT_BLACK


def write_stand_in_export(folder: pathlib.Path, image_size: int = 32, mode: str = "align",
                          **till) -> pathlib.Path:
  """An export folder following the ONNX contract (dex outputs) with a one-line model."""
  folder.mkdir(parents=True, exist_ok=True)
  weight = lambda name, value: numpy_helper.from_array(np.asarray(value, np.float32), name)  # noqa: E731
  nodes = [
      helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
      helper.make_node("Mul", ["mean", "slope"], ["scaled"]),
      helper.make_node("Add", ["scaled", "offset"], ["age"]),
      helper.make_node("Mul", ["age", "zero"], ["nothing"]),
      helper.make_node("Add", ["nothing", "spread"], ["age_spread"]),
      helper.make_node("Sub", ["legal", "age"], ["margin"]),
      helper.make_node("Sigmoid", ["margin"], ["p_under_legal_age"]),
  ]
  outputs = ["age", "age_spread", "p_under_legal_age"]
  graph = helper.make_graph(
      nodes, "stand_in",
      [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                     ["N", image_size, image_size, 3])],
      [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"]) for name in outputs],
      [weight("slope", BRIGHTNESS_SLOPE), weight("offset", AGE_AT_BLACK), weight("zero", 0.0),
       weight("spread", 3.0), weight("legal", 18.0)])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
  onnx.checker.check_model(model)
  (folder / "model.onnx").write_bytes(model.SerializeToString())
  policy = {"legal_age": 18.0, "challenge_age": 25.0, "max_risk": None, "source": "test rule",
            "description": "ID check when the estimate is under 25 (legal age 18; test rule)"}
  metadata = {
      "format": "ageflax-export-2", "kind": "onnx", "model": "stand_in", "head": "dex",
      "step": 7, "image_size": image_size, "flip_tta": False, "outputs": outputs,
      "legal_age": 18.0, "challenge_age": 25.0,
      "face_framing": {"mode": mode, "min_face_fraction": 0.1, "min_score": 0.9},
      "till": {"min_photo_side": 48, "min_face_side": 40, "min_sharpness": 2.5,
               "max_noise_ratio": 2.0, "max_spread": 12.0, "max_image_megapixels": 40.0,
               **till},
      "id_policy": policy, "onnx_file": "model.onnx"}
  (folder / "ageflax_export.json").write_text(json.dumps(metadata, indent=2))
  return folder


@contextlib.contextmanager
def running_service(model_dir: pathlib.Path, *flags: str, log: pathlib.Path):
  """`scripts/serve.py` on a free loopback port until the block ends; yields its base URL."""
  port = free_port()
  with open(log, "w") as log_file:
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py", f"--model={model_dir}", f"--port={port}", *flags],
        cwd=REPO, env=subprocess_env(1), stdout=log_file, stderr=subprocess.STDOUT)
  url = f"http://127.0.0.1:{port}"
  try:
    _wait_until_healthy(url, process, log)
    yield url
  finally:
    process.terminate()
    process.wait(timeout=30)


def _wait_until_healthy(url: str, process: subprocess.Popen, log: pathlib.Path) -> None:
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise AssertionError(f"the service exited {process.returncode}: {log.read_text()[-3000:]}")
    try:
      if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
        return
    except httpx.HTTPError:
      pass
    time.sleep(0.2)
  raise AssertionError(f"the service did not answer /healthz: {log.read_text()[-3000:]}")
