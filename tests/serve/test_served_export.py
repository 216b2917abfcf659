"""The till service end to end: a tiny dex run trained here, exported with
`scripts/export.py --format=onnx`, served by `scripts/serve.py`, against the JAX predictor."""

import json

import httpx
import numpy as np
import pytest
from conftest import run_entry_point
from PIL import Image
from serving import running_service

from ageflax.till import photos
from ageflax.till.predictor import Predictor


@pytest.fixture(scope="module")
def exported(tmp_path_factory, head_runs):
  """The shared tiny dex run (framing 'none'), its ONNX export, served."""
  root = tmp_path_factory.mktemp("served_export")
  workdir = head_runs["dex"]
  result = run_entry_point(["scripts/export.py", "--format=onnx", f"--workdir={workdir}",
                            f"--output_dir={root / 'onnx'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  with running_service(root / "onnx", log=root / "log.txt") as url:
    yield {"root": root, "workdir": workdir, "url": url,
           "faces": sorted(head_runs["faces"].iterdir())[:4]}


def _till_frame(face_file, left: int, top: int):
  """The face photo grown 3x and pasted off centre into a grey 480x640 scene."""
  face = Image.open(face_file).convert("RGB").resize((144, 144), Image.Resampling.BICUBIC)
  scene = Image.new("RGB", (640, 480), (110, 110, 110))
  scene.paste(face, (left, top))
  return scene


def _served(url: str, path) -> dict:
  content_type = "image/png" if str(path).endswith(".png") else "image/jpeg"
  response = httpx.post(f"{url}/v1/estimate", content=path.read_bytes(),
                        headers={"Content-Type": content_type}, timeout=60)
  assert response.status_code == 200, response.text
  return response.json()


def test_the_service_matches_the_jax_predictor(exported, tmp_path):
  """PNG photos (lossless, so both decoders see the same pixels), whole faces and till
  frames, within 1e-3 years of the JAX predictor fed by training's TF loading."""
  files = []
  for number, face_file in enumerate(exported["faces"]):
    Image.open(face_file).save(tmp_path / f"face{number}.png")
    _till_frame(face_file, 60 + 100 * number, 200).save(tmp_path / f"till{number}.png")
    files += [tmp_path / f"face{number}.png", tmp_path / f"till{number}.png"]
  predictor = Predictor.from_workdir(str(exported["workdir"]))
  expected = predictor.predict(np.stack([photos.load_photo(str(f), 32)[0].image for f in files]))
  spreads, under = expected.spreads(), expected.probabilities_under(18)
  assert np.ptp(expected.ages) > 0.01  # the photos tell apart more than the tolerance
  for index, path in enumerate(files):
    answer = _served(exported["url"], path)
    assert len(answer["faces"]) == 1
    face = answer["faces"][0]
    assert face["age"] == pytest.approx(expected.ages[index], abs=1e-3), path.name
    assert face["age_spread"] == pytest.approx(spreads[index], abs=1e-3)
    assert face["p_under_legal_age"] == pytest.approx(under[index], abs=1e-4)
    width, height = Image.open(path).size
    assert face["box"] == {"x": 0, "y": 0, "width": width, "height": height}
    assert answer["model"] == {"model": "_resnet_tiny", "head": "dex", "step": predictor.step,
                               "image_size": 32, "flip_tta": False, "face_framing": "none"}


def test_jpeg_photos_stay_close_to_the_jax_predictor(exported):
  """JPEG: Pillow decodes with libjpeg's accurate DCT, TensorFlow with its fast one, so the
  pixels differ by a few levels; the estimates stay close."""
  predictor = Predictor.from_workdir(str(exported["workdir"]))
  files = exported["faces"]
  expected = predictor.predict(np.stack([photos.load_photo(str(f), 32)[0].image
                                         for f in files])).ages
  served = np.array([_served(exported["url"], f)["faces"][0]["age"] for f in files])
  np.testing.assert_allclose(served, expected, atol=0.5)


def test_the_export_carries_the_policy_the_service_applies(exported):
  metadata = json.loads((exported["root"] / "onnx" / "ageflax_export.json").read_text())
  answer = httpx.get(f"{exported['url']}/healthz").json()
  assert answer["status"] == "ok" and answer["model"]["step"] == metadata["step"]
  wall = exported["root"] / "wall.png"
  Image.new("RGB", (320, 240), (90, 90, 90)).save(wall)
  served = _served(exported["url"], wall)
  assert served["policy"] == metadata["id_policy"]["description"]
  assert served["id_check"] is True and served["faces"][0]["reason"].startswith(
      "too blurred to judge")
