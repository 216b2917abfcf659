"""The face normaliser: detection, the canonical frame, till framings, and framing in the pipeline."""

import concurrent.futures

import cv2
import numpy as np
import pytest
from conftest import REAL_FACES, data_config, found_face, run_entry_point, tiny_train_args
from PIL import Image

from ageflax.core.errors import DataError
from ageflax.data import face_frame, faces, image_store, pipeline
from ageflax.devtools.synthetic import portraits
from ageflax.till import photos


def _till_photo(face: np.ndarray, scale: float, angle: float, offset: tuple[int, int]):
  """`face` shrunk or grown, turned and pasted off centre into a bigger grey scene."""
  side = round(face.shape[0] * scale)
  turned = cv2.warpAffine(cv2.resize(face, (side, side)),
                          cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0),
                          (side, side), borderMode=cv2.BORDER_REPLICATE)
  scene = np.full((480, 640, 3), 110, np.uint8)
  top, left = 240 - side // 2 + offset[1], 320 - side // 2 + offset[0]
  scene[top:top + side, left:left + side] = turned
  return scene


def test_the_similarity_transform_is_recovered_exactly():
  angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
  rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  source = np.random.default_rng(0).uniform(0, 100, (5, 2))
  target = source @ (scale * rotation).T + shift
  matrix = face_frame.similarity_transform(source, target)
  np.testing.assert_allclose(face_frame.apply(matrix, source), target, atol=1e-9)
  mirrored = source * [-1, 1]  # a reflection is no similarity: the fit must not mirror
  assert np.linalg.det(face_frame.similarity_transform(source, mirrored)[:, :2]) > 0


def test_a_framed_face_has_its_landmarks_on_the_canonical_frame():
  normaliser = faces.FaceNormaliser(128)
  photo = _till_photo(found_face(), 1.6, 20.0, (90, 40))
  face = normaliser.detect(photo)[0]
  moved = face_frame.apply(face_frame.frame_matrix(face.landmarks, 128), face.landmarks) / 128
  assert np.abs(moved - face_frame.CANONICAL_LANDMARKS).max() < 0.05
  eyes = moved[1] - moved[0]
  assert abs(np.degrees(np.arctan2(eyes[1], eyes[0]))) < 4  # the 20 degree turn is undone
  assert normaliser.frame(photo, face).shape == (128, 128, 3)


def test_till_framings_of_one_face_give_the_same_picture():
  face = found_face(1)
  normaliser = faces.FaceNormaliser(64)
  reference = normaliser.frame_main(face).astype(np.float32)
  for scale, angle, offset in ((1.2, 0.0, (0, 0)), (1.5, -15.0, (-120, 30)), (2.5, 10.0, (60, 0))):
    framed = normaliser.frame_main(_till_photo(face, scale, angle, offset))
    assert framed is not None, (scale, angle, offset)
    assert np.abs(framed.astype(np.float32) - reference).mean() < 25, (scale, angle, offset)


def test_no_face_is_none_and_a_reason_at_the_till(tmp_path):
  normaliser = faces.FaceNormaliser(32)
  assert normaliser.detect(np.full((200, 200, 3), 90, np.uint8)) == []
  assert normaliser.frame_main(np.full((200, 200, 3), 90, np.uint8)) is None
  Image.fromarray(np.full((100, 150, 3), 90, np.uint8)).save(tmp_path / "wall.png")
  loaded = photos.load_photo(str(tmp_path / "wall.png"), 32, normaliser)
  assert [(p.problem, p.image) for p in loaded] == [("no face found", None)]


def test_each_face_becomes_its_own_framed_photo(tmp_path):
  face = found_face(2)
  Image.fromarray(_till_photo(face, 1.2, 0.0, (0, 0))).save(tmp_path / "till.png")
  found = photos.load_photo(str(tmp_path / "till.png"), 48, faces.FaceNormaliser(48))
  assert found[0].face == 1 and found[0].image.shape == (48, 48, 3)
  box = found[0].box
  assert abs(box.x + box.width / 2 - 320) < 40 and abs(box.y + box.height / 2 - 240) < 60


def test_threads_frame_as_one_thread_does():
  photos_ = [_till_photo(found_face(seed), 1.0 + seed / 10, seed, (seed * 9, 0))
             for seed in range(6)]
  normaliser = faces.FaceNormaliser(48)
  serial = [normaliser.frame_main(p) for p in photos_]
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    threaded = list(pool.map(normaliser.frame_main, photos_ * 3))
  for one, other in zip(serial * 3, threaded, strict=True):
    np.testing.assert_array_equal(one, other)


def test_the_template_is_measured_on_square_photos():
  normaliser = faces.FaceNormaliser(96)
  squares = [found_face(seed, size=160) for seed in range(3)]
  measured = faces.calibrate_template(normaliser, squares)
  assert measured["with_face"] == 3 and measured["photos"] == 3
  template = np.array(measured["template"])
  assert template.shape == (5, 2) and np.all((template > 0) & (template < 1))
  assert template[0, 0] < template[1, 0] and template[0, 1] < template[3, 1]  # eyes over mouth
  assert measured["distance_after"] <= measured["distance_before"] + 1e-9
  with pytest.raises(DataError, match="no face found in any of the 1 photos"):
    faces.calibrate_template(normaliser, [np.zeros((64, 64, 3), np.uint8)])


def _framed_folder(tmp_path, num_faces: int = 24):
  """Synthetic faces plus one photo without a face, in the study's layout."""
  root = tmp_path / "faces"
  portraits.write_synthetic_faces(root, num_faces, seed=0, image_size=96)
  Image.fromarray(np.full((96, 96, 3), 90, np.uint8)).save(root / "final_files" / "wall.jpg")
  with open(root / "labels.csv", "a") as f:
    f.write("wall.jpg,30\n")
  return root


def test_the_pipeline_frames_each_photo_and_skips_those_without_a_face(tmp_path):
  root = _framed_folder(tmp_path)
  config = data_config(root, image_size=32, face_framing__mode="align", max_bad_fraction=0.5,
                       validation_fraction=0.25)
  data = pipeline.prepare(config, problems_path=str(tmp_path / "skipped.csv"))
  reasons = {p.file_name: p.reason for p in data.problems}
  assert reasons["wall.jpg"] == image_store.NO_FACE
  assert "no face found" in (tmp_path / "skipped.csv").read_text()
  assert data.store.cache.shape[1:] == (32, 32, 3)
  # The split is drawn before framing: framed or not, a photo is held out alike.
  plain = pipeline.prepare(data_config(root, image_size=32, validation_fraction=0.25), None)
  framed_names = {data.store.file_names[i] for i in data.indices("validation")}
  plain_names = {plain.store.file_names[i] for i in plain.indices("validation")}
  assert framed_names <= plain_names and len(plain_names - framed_names) <= len(reasons)
  with pytest.raises(DataError, match="no face found"):
    pipeline.prepare(data_config(root, image_size=32, face_framing__mode="align",
                                 max_bad_fraction=0.0), None)


def test_framing_needs_the_in_memory_cache(tmp_path):
  config = data_config(_framed_folder(tmp_path, 4), image_size=32, face_framing__mode="align",
                       cache="none", max_bad_fraction=0.9)
  with pytest.raises(DataError, match=r"keeps the 5 framed photos in memory .* data\.cache='none' "
                     r"allows .* write framed records once with scripts/prepare_tfds\.py"):
    pipeline.prepare(config, None)


def test_a_framed_run_evaluates_and_names_the_photos_without_a_face(tmp_path):
  root = _framed_folder(tmp_path)
  framing = ["--config.data.face_framing.mode=align", "--config.data.max_bad_fraction=0.5"]
  trained = run_entry_point(tiny_train_args(root, tmp_path / "run", *framing))
  assert trained.returncode == 0, trained.stderr[-3000:]
  # Every photo of the folder, whichever split the photo without a face fell into.
  result = run_entry_point(["scripts/eval.py", f"--workdir={tmp_path / 'run'}",
                            f"--data_dir={root}", "--split=all",
                            f"--output_dir={tmp_path / 'eval'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "photos without a usable face" in result.stdout
  assert "wall.jpg" in (tmp_path / "eval" / "skipped_rows.csv").read_text()
  predicted = run_entry_point(["scripts/predict.py", f"--workdir={tmp_path / 'run'}",
                               str(root / "final_files" / "wall.jpg")])
  assert predicted.returncode == 0, predicted.stderr[-3000:]
  assert "framed by the face normaliser" in predicted.stderr
  row = predicted.stdout.splitlines()[1]
  assert "yes" in row and "no face found" in row


@pytest.mark.skipif(not REAL_FACES.exists(), reason="needs ../shared/data/faces")
def test_real_aligned_faces_are_found_and_barely_moved():
  files = sorted((REAL_FACES / "final_files").iterdir())[:400:10]
  normaliser = faces.FaceNormaliser(200)
  images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
  found = [normaliser.detect(image) for image in images]
  assert np.mean([bool(f) for f in found]) >= 0.9
  offsets = [np.abs(f[0].landmarks / 200 - face_frame.CANONICAL_LANDMARKS).mean()
             for f in found if f]
  assert np.median(offsets) < 0.04  # the template was measured on these photos
