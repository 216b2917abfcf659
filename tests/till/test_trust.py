"""The till fails safe: each rule that refuses to trust an estimate, and rows_for applying them."""

import os

import numpy as np
import pytest
from conftest import REAL_FACES
from PIL import Image, ImageFilter

from ageflax.config import defaults
from ageflax.data.faces import FaceBox
from ageflax.devtools.synthetic import portraits
from ageflax.till import photos, prediction_rows
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictions
from ageflax.till.trust import TrustRules

RULES = TrustRules.from_config(defaults.get_config().till)


@pytest.fixture(scope="module")
def face_file(tmp_path_factory):
  folder = tmp_path_factory.mktemp("trust")
  portraits.write_synthetic_faces(folder, 1, seed=3, image_size=128)
  return folder / "final_files" / "000000.jpg"


def _saved(path, pixels: np.ndarray) -> str:
  Image.fromarray(pixels).save(path)
  return str(path)


def _reason(path, image_size: int = 64, spread: float | None = None) -> str | None:
  return RULES.distrust(photos.load_photo(str(path), image_size)[0], spread)


def test_a_clear_face_is_trusted(face_file):
  assert _reason(face_file) is None and _reason(face_file, 224, spread=5.0) is None


def test_a_photo_too_small_to_judge(tmp_path):
  one_pixel = _saved(tmp_path / "one.png", np.full((1, 1, 3), 128, np.uint8))
  assert _reason(one_pixel) == "photo too small to judge (1x1)"
  assert _reason(_saved(tmp_path / "thin.png", np.zeros((47, 300, 3), np.uint8))) == (
      "photo too small to judge (300x47)")


def test_a_face_too_small_to_judge(face_file):
  photo = photos.load_photo(str(face_file), 64)[0]
  tiny_face = photos.Photo(photo.path, photo.image, face=1, box=FaceBox(3, 4, 39, 50),
                           size=photo.size)
  assert RULES.distrust(tiny_face) == "face too small to judge (39x50)"


def test_a_blurred_face_and_a_flat_picture_are_too_blurred(face_file, tmp_path):
  blurred = Image.open(face_file).filter(ImageFilter.GaussianBlur(8))
  blurred.save(tmp_path / "blurred.png")
  assert _reason(tmp_path / "blurred.png").startswith("too blurred to judge (sharpness ")
  upscaled = _saved(tmp_path / "wall.png", np.full((200, 200, 3), 90, np.uint8))
  assert _reason(upscaled) == "too blurred to judge (sharpness 0.0 < 2.5)"


@pytest.mark.parametrize("side", [64, 480, 1000])
@pytest.mark.parametrize("image_size", [32, 224])
def test_noise_is_not_a_face(tmp_path, side, image_size):
  noise = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
  assert _reason(_saved(tmp_path / "noise.png", noise), image_size).startswith(
      "noise, not a face (detail ")


def test_an_estimate_the_model_is_unsure_of(face_file):
  assert _reason(face_file, spread=12.5) == "model unsure (spread 12.5 > 12 years)"
  assert _reason(face_file, spread=11.9) is None


def test_rows_never_say_no_to_an_untrusted_photo(face_file, tmp_path):
  noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
  loaded = [photos.load_photo(p, 64)[0] for p in (
      str(face_file), _saved(tmp_path / "noise.png", noise),
      _saved(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8)))]
  confident = Predictions(np.array([34.0, 34.0, 34.0], np.float32), None)
  rows = prediction_rows.rows_for(loaded, confident, IdCheckPolicy(18, 25), RULES)
  assert [r.id_check for r in rows] == [False, True, True]
  assert [r.age for r in rows] == [34.0] * 3
  assert rows[1].note.startswith("noise, not a face") and rows[2].note.startswith("photo too")


@pytest.mark.skipif(not REAL_FACES.is_dir(), reason="the real faces are not here")
def test_real_faces_are_trusted():
  """The defaults' calibration: 200 real faces (of the 21,320) at the model's 224 pixels."""
  names = sorted(os.listdir(REAL_FACES / "final_files"))[::100][:200]
  reasons = [_reason(REAL_FACES / "final_files" / name, 224) for name in names]
  assert [r for r in reasons if r] == []
