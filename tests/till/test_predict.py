"""Prediction at the till: the predictor, the ID-check policy, face detection, predict.py and
the SavedModel export, on models trained here."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import error_line, run_entry_point, write_jpeg
from PIL import Image

from ageflax.core import age_bands
from ageflax.core.errors import ConfigError, DataError
from ageflax.model import dex
from ageflax.till import photos, prediction_rows, savedmodel
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictor


@pytest.fixture(scope="module")
def runs(head_runs):
  """Synthetic faces and two tiny runs on them: the affine head and the dex head."""
  return head_runs


def _loaded(paths, image_size=32):
  return np.stack([photos.load_photo(str(p), image_size)[0].image for p in paths])


def test_id_check_policy():
  policy = IdCheckPolicy(18, 25)
  assert policy.needs_id(24.9) and not policy.needs_id(25.0) and not policy.needs_id(40, 0.9)
  risky = IdCheckPolicy(18, 25, max_risk=0.05)
  assert risky.needs_id(30, p_under_legal=0.06) and not risky.needs_id(30, p_under_legal=0.05)
  assert risky.needs_id(20, p_under_legal=0.0)
  assert "or P(age < 18) > 0.05" in risky.describe()
  with pytest.raises(ConfigError, match=r"legal age \(21\) must be above 0 and at most"):
    IdCheckPolicy(21, 18)
  with pytest.raises(ConfigError, match="--max_risk must be a probability"):
    IdCheckPolicy(18, 25, max_risk=1.5)


def test_predictor_batches_pads_and_averages_the_mirror_image(runs):
  predictor = Predictor.from_workdir(str(runs["affine"]), batch_size=8)
  images = _loaded(sorted(runs["faces"].iterdir())[:11])  # one full batch and a padded one
  ages = predictor.predict(images).ages
  assert ages.shape == (11,)
  one_by_one = np.concatenate([predictor.predict(images[i:i + 1]).ages for i in range(11)])
  np.testing.assert_allclose(ages, one_by_one, rtol=1e-5)
  mirrored = predictor.predict(images[:, :, ::-1]).ages
  np.testing.assert_allclose(predictor.predict(images, flip_tta=True).ages,
                             (ages + mirrored) / 2, rtol=1e-5)
  with pytest.raises(ValueError, match=r"expected images \[N, 32, 32, 3\]"):
    predictor.predict(images[:, :16])


def test_dex_predictions_carry_a_distribution(runs):
  predictor = Predictor.from_workdir(str(runs["dex"]), batch_size=8)
  predictions = predictor.predict(_loaded(sorted(runs["faces"].iterdir())[:5]))
  assert predictions.distributions.shape == (5, 101)
  np.testing.assert_allclose(predictions.distributions.sum(axis=1), 1, rtol=1e-5)
  # The run's readout: the median, as configs/resnet50.py and the configs built on it read.
  np.testing.assert_allclose(predictions.ages, dex.median_age(predictions.distributions),
                             rtol=1e-5)
  assert np.all((predictions.probabilities_under(18) >= 0) &
                (predictions.probabilities_under(18) <= 1))
  assert np.all(predictions.spreads() > 0)


def test_missing_and_unknown_checkpoints_are_named(tmp_path, runs):
  with pytest.raises(Exception, match="no checkpoints in"):
    Predictor.from_workdir(str(tmp_path))
  with pytest.raises(Exception, match=r"no checkpoint 999 in .*\(there are: "):
    Predictor.from_workdir(str(runs["affine"]), step=999)


def test_listing_files_folders_and_csv_lists(tmp_path):
  rng = np.random.default_rng(0)
  for name in ("a.jpg", "sub/b.PNG", "d.jpeg"):
    write_jpeg(tmp_path / "in" / name, 30, rng, 8)
  (tmp_path / "in" / "sub" / "c.txt").write_text("not listed")
  (tmp_path / "list.csv").write_text("file_name,other\nin/a.jpg,1\n\nin/d.jpeg,2\n")
  assert photos.list_photos([str(tmp_path / "in"), str(tmp_path / "in" / "a.jpg")],
                            str(tmp_path / "list.csv")) == [
      str(tmp_path / "in" / n) for n in ("a.jpg", "d.jpeg", "sub/b.PNG", "a.jpg", "a.jpg",
                                         "d.jpeg")]
  (tmp_path / "empty").mkdir()
  with pytest.raises(DataError, match=r"empty: no photos in this folder"):
    photos.list_photos([str(tmp_path / "empty")])
  with pytest.raises(DataError, match=r"nowhere.jpg: no such file or folder"):
    photos.list_photos([str(tmp_path / "nowhere.jpg")])
  with pytest.raises(DataError, match=r"list.csv: no column 'path' in the header"):
    photos.list_photos([], str(tmp_path / "list.csv"), "path")
  with pytest.raises(DataError, match="no photos given"):
    photos.list_photos([])


def test_a_bad_photo_gets_a_reason_not_an_exception(tmp_path):
  (tmp_path / "text.jpg").write_text("not a photo")
  rng = np.random.default_rng(0)
  write_jpeg(tmp_path / "cut.jpg", 30, rng, 32)
  data = (tmp_path / "cut.jpg").read_bytes()
  (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
  (tmp_path / "broken.jpg").write_bytes(data[:200] + b"\x00" * 400 + data[-2:])
  reasons = {p.name: photos.load_photo(str(p), 32)[0].problem for p in tmp_path.iterdir()}
  assert reasons["text.jpg"].startswith("not a JPEG, PNG, GIF or BMP image")
  assert reasons["cut.jpg"] == "truncated JPEG (no end-of-image marker)"
  assert reasons["broken.jpg"].startswith("cannot decode the image")


def test_predict_script_prints_a_row_per_photo(runs, tmp_path):
  faces = sorted(runs["faces"].iterdir())[:6]
  (tmp_path / "bad.jpg").write_text("oops")
  result = run_entry_point(["scripts/predict.py", f"--workdir={runs['affine']}",
                            *map(str, faces[:3]), str(tmp_path / "bad.jpg"),
                            f"--csv={runs['root'] / 'faces' / 'labels.csv'}",
                            f"--csv_root={runs['faces']}",
                            "--batch_size=8"])
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0].split() == ["file", "age", "band", "ID", "check", "note"]
  rows = [line.split() for line in lines[1:]]
  assert len(rows) == 3 + 1 + 40
  expected = Predictor.from_workdir(str(runs["affine"])).predict(_loaded(faces[:3])).ages
  for row, age in zip(rows[:3], expected, strict=True):
    assert row[1] == f"{age:.1f}" and row[2] == age_bands.band_of(age)
    assert row[3] == ("yes" if age < 25 else "no")
  assert rows[3][:2] == [str(tmp_path / "bad.jpg"), "yes"] and "not a JPEG" in lines[4]
  assert "44 photos: 43 estimates" in result.stderr and "1 without an estimate" in result.stderr


def test_predict_script_writes_json_and_csv_with_the_dex_risk(runs, tmp_path):
  faces = [str(f) for f in sorted(runs["faces"].iterdir())[:4]]
  out = tmp_path / "ages.json"
  result = run_entry_point(["scripts/predict.py", f"--workdir={runs['dex']}", *faces,
                            f"--output={out}", "--max_risk=0.01", "--flip_tta",
                            "--challenge_age=21"])
  assert result.returncode == 0, result.stderr[-3000:]
  written = json.loads(out.read_text())
  assert written["about"]["policy"] == ("ID check when the estimate is under 21 or "
                                        "P(age < 18) > 0.01 (legal age 18; set by "
                                        "--challenge_age/--max_risk)")
  assert written["about"]["flip_tta"] is True and written["about"]["estimates"] == 4
  for row in written["rows"]:
    assert 0 <= row["p_under_legal_age"] <= 1 and row["age_spread"] > 0
    assert row["id_check"] == ("yes" if row["age"] < 21 or row["p_under_legal_age"] > 0.01
                               else "no")


def test_rows_as_csv_and_json(tmp_path):
  rows = [prediction_rows.Row("a.jpg", False, 30.126, "25-34", 1, "1,2,3x3", 4.5, 0.01234567),
          prediction_rows.Row("b.jpg", True, note="no face found")]
  prediction_rows.write_rows(str(tmp_path / "rows.csv"), rows, {})
  with open(tmp_path / "rows.csv") as f:
    written = list(csv.DictReader(f))
  assert written[0] == {"file": "a.jpg", "face": "1", "box": "1,2,3x3", "age": "30.13",
                        "band": "25-34", "id_check": "no", "age_spread": "4.5",
                        "p_under_legal_age": "0.0123", "note": ""}
  assert written[1]["id_check"] == "yes" and written[1]["age"] == ""
  prediction_rows.write_rows(str(tmp_path / "rows.json"), rows, {"model": "m"})
  assert json.loads((tmp_path / "rows.json").read_text())["rows"][1]["note"] == "no face found"
  table = prediction_rows.format_table(rows, IdCheckPolicy()).splitlines()
  assert table[0].split() == ["file", "face", "age", "band", "ID", "check", "spread", "P(<18)",
                              "note"]
  assert table[1].split() == ["a.jpg", "1", "30.1", "25-34", "no", "4.5", "0.012"]
  assert table[2].split() == ["b.jpg", "yes", "no", "face", "found"]
  for bad in ("ages.txt", str(tmp_path / "nowhere" / "ages.csv")):
    with pytest.raises(ConfigError, match="--output="):
      prediction_rows.check_output_path(bad)


def test_predict_script_bad_inputs_get_one_line(runs, tmp_path):
  (tmp_path / "empty").mkdir()
  cases = [
      ([f"--workdir={tmp_path}", str(runs["faces"])], "no checkpoints in"),
      ([f"--workdir={runs['affine']}", str(tmp_path / "empty")], "empty: no photos in this"),
      ([f"--workdir={runs['affine']}", str(runs["faces"]), "--max_risk=0.1"],
       "--max_risk needs a run trained with model.head='dex'"),
  ]
  for args, message in cases:
    assert message in error_line(run_entry_point(["scripts/predict.py", *args]))


def test_predict_script_says_when_a_photo_has_no_face(runs, tmp_path):
  Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(tmp_path / "wall.jpg")
  result = run_entry_point(["scripts/predict.py", f"--workdir={runs['affine']}",
                            str(tmp_path / "wall.jpg"), "--detect_faces"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines()[1].split()[-4:] == ["yes", "no", "face", "found"]


@pytest.mark.parametrize("head", ["affine", "dex"])
def test_saved_model_matches_the_jax_predictor(runs, tmp_path, head):
  """Both signatures against the JAX predictor, within 1e-4 years (float32, other kernels)."""
  predictor = Predictor.from_workdir(str(runs[head]))
  metadata = savedmodel.export_saved_model(predictor, str(tmp_path / "exported"))
  files = sorted(runs["faces"].iterdir())[:5]
  images = _loaded(files)
  expected = predictor.predict(images)
  served = tf.saved_model.load(str(tmp_path / "exported"))
  from_pixels = served.signatures["serving_default"](images=tf.constant(images, tf.float32))
  from_bytes = served.signatures["predict_image_bytes"](
      image_bytes=tf.constant([f.read_bytes() for f in files]))
  for outputs in (from_pixels, from_bytes):
    np.testing.assert_allclose(outputs["age"].numpy(), expected.ages, atol=1e-4)
    if head == "dex":
      np.testing.assert_allclose(outputs["p_under_legal_age"].numpy(),
                                 expected.probabilities_under(18), atol=1e-5)
      np.testing.assert_allclose(outputs["age_spread"].numpy(), expected.spreads(), atol=1e-4)
  assert metadata["outputs"] == (["age", "age_spread", "p_under_legal_age"] if head == "dex"
                                 else ["age"])
  one = served.signatures["predict_images"](images=tf.constant(images[:1], tf.float32))
  assert one["age"].shape == (1,)


def test_export_script_refuses_a_folder_in_use(runs, tmp_path):
  (tmp_path / "x").mkdir()
  (tmp_path / "x" / "keep.txt").write_text("")
  result = run_entry_point(["scripts/export.py", f"--workdir={runs['affine']}",
                            f"--output_dir={tmp_path / 'x'}"])
  assert "holds 'keep.txt', not only numbered version folders" in error_line(result)
  result = run_entry_point(["scripts/export.py", f"--workdir={runs['affine']}",
                            f"--output_dir={tmp_path / 'new'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / "new" / "1" / "saved_model.pb").exists()  # TF Serving's version 1
  assert "predict_image_bytes (image_bytes string [N]) -> age" in result.stdout


def test_predict_script_refuses_an_output_folder_before_any_work(tmp_path):
  (tmp_path / "x.csv").mkdir()
  line = error_line(run_entry_point(["scripts/predict.py", f"--workdir={tmp_path / 'no_run'}",
                                     str(tmp_path), f"--output={tmp_path / 'x.csv'}"]))
  assert line == f"error: --output={tmp_path / 'x.csv'} is a folder: name a file in it"


@pytest.mark.parametrize("head", ["affine", "dex"])
def test_noise_and_a_one_pixel_photo_never_get_no(runs, tmp_path, head):
  Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "one.png")
  noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
  Image.fromarray(noise).save(tmp_path / "noise.png")
  out = tmp_path / "rows.csv"
  result = run_entry_point(["scripts/predict.py", f"--workdir={runs[head]}", str(tmp_path),
                            f"--output={out}", "--legal_age=1", "--challenge_age=1"])  # trusted: no
  assert result.returncode == 0, result.stderr[-3000:]
  with open(out) as f:
    rows = {row["file"].rsplit("/", 1)[-1]: row for row in csv.DictReader(f)}
  assert rows["one.png"]["id_check"] == "yes"
  assert rows["one.png"]["note"] == "photo too small to judge (1x1)"
  assert rows["noise.png"]["id_check"] == "yes"
  assert rows["noise.png"]["note"].startswith("noise, not a face")
  assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []


def test_the_bytes_signature_serves_good_photos_beside_bad_ones(runs, tmp_path):
  """A bad element gets NaN and its reason in `status`; the batch is still served."""
  predictor = Predictor.from_workdir(str(runs["affine"]))
  savedmodel.export_saved_model(predictor, str(tmp_path / "exported"))
  good = sorted(runs["faces"].iterdir())[0]
  good_bytes = good.read_bytes()
  bomb = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (20000).to_bytes(4, "big") * 2
          + b"\x08\x02\x00\x00\x00" + b"\x00" * 4 + b"IEND\xaeB`\x82")
  batch = [good_bytes, b"not a photo at all", good_bytes[:len(good_bytes) // 2], bomb]
  served = tf.saved_model.load(str(tmp_path / "exported"))
  outputs = served.signatures["predict_image_bytes"](image_bytes=tf.constant(batch))
  status = [s.decode() for s in outputs["status"].numpy()]
  assert status == ["ok", "not a JPEG or PNG image", "truncated image (no end marker)",
                    "declares over 40 megapixels"]
  ages = outputs["age"].numpy()
  np.testing.assert_allclose(ages[0], predictor.predict(_loaded([good])).ages[0], atol=1e-4)
  assert np.isnan(ages[1:]).all()
