"""The exports for serving: ONNX against the JAX predictor, the metadata contract both formats
write, the calibrated policy carried into it, SavedModel version folders, both platforms, and
EXIF orientation in the SavedModel's bytes signature."""

import io
import json
import shutil
import struct

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from conftest import error_line, run_entry_point, set_fields
from flax import nnx
from PIL import Image
from tensorflow.core.protobuf import saved_model_pb2

from ageflax.core.errors import ConfigError
from ageflax.data import image_files, tf_images
from ageflax.model import architectures, resnet
from ageflax.till import export_metadata, onnx_export, photos, policy_file, savedmodel, tf_exif
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictor

# float32 ONNX Runtime against float32 XLA: measured within 1e-5 years, 3e-6 of spread and
# 1e-7 of probability on these models; the bounds leave room for other CPUs' kernels.
AGE_TOLERANCE, SPREAD_TOLERANCE, PROBABILITY_TOLERANCE = 1e-4, 1e-4, 1e-6
METADATA_KEYS = ["format", "kind", "model", "head", "dex_readout", "step", "image_size",
                 "flip_tta", "outputs", "legal_age", "challenge_age", "face_framing", "till",
                 "id_policy"]


@pytest.fixture(scope="module")
def runs(head_runs):
  """Synthetic faces and two tiny runs on them: the affine head and the dex head."""
  files = sorted(head_runs["faces"].iterdir())
  return {**head_runs, "photos": files[:5],
          "images": np.stack([photos.load_photo(str(p), 32)[0].image for p in files[:5]])}


def _onnx_outputs(model, images: np.ndarray) -> dict[str, np.ndarray]:
  session = onnxruntime.InferenceSession(model.SerializeToString(),
                                         providers=["CPUExecutionProvider"])
  values = session.run(None, {"images": images.astype(np.float32)})
  return {output.name: value for output, value in zip(session.get_outputs(), values,
                                                      strict=True)}


def _assert_same_estimates(outputs: dict, predictions, legal_age: float) -> None:
  np.testing.assert_allclose(outputs["age"], predictions.ages, rtol=0, atol=AGE_TOLERANCE)
  if predictions.distributions is None:
    assert list(outputs) == ["age"]
    return
  np.testing.assert_allclose(outputs["age_spread"], predictions.spreads(), rtol=0,
                             atol=SPREAD_TOLERANCE)
  np.testing.assert_allclose(outputs["p_under_legal_age"],
                             predictions.probabilities_under(legal_age), rtol=0,
                             atol=PROBABILITY_TOLERANCE)


@pytest.mark.parametrize("head", ["affine", "dex"])
def test_onnx_matches_the_jax_predictor_for_any_batch_and_flip_tta(runs, head):
  predictor = Predictor.from_workdir(str(runs[head]), batch_size=8)
  for flip_tta in (False, True):
    model = onnx_export.build_model(predictor, 18.0, flip_tta)
    for count in (1, 5):
      images = runs["images"][:count]
      outputs = _onnx_outputs(model, images)
      assert {name: value.shape for name, value in outputs.items()} == {
          name: (count,) for name in outputs}
      _assert_same_estimates(outputs, predictor.predict(images, flip_tta), 18.0)


def _random_predictor(architecture, head: str, head_noise: float = 0.2,
                      **model_fields) -> Predictor:
  """A Predictor of a model built here whose every weight and BatchNorm statistic is random,
  so the export cannot pass by an identity block or an untrained head; `head_noise` keeps a
  dex head's softmax soft where the features are large."""
  config = _tiny_config(head=head, **model_fields)
  model = resnet.ResNetRegressor(architecture, rngs=nnx.Rngs(0), head=head,
                                 input_normalization=config.model.input_normalization,
                                 block_style=config.model.block_style, dex_max_age=100,
                                 dex_readout=config.model.dex_readout)
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  keys = iter(jax.random.split(jax.random.key(1), 1000))

  def shaken(path, leaf):
    noise = jax.random.normal(next(keys), leaf.shape)
    name = jax.tree_util.keystr(path)
    if "var" in name:
      return leaf * jnp.exp(0.5 * noise)
    return leaf + (head_noise if "head" in name else 0.2) * noise

  params, stats = (jax.tree_util.tree_map_with_path(shaken, state) for state in (params, stats))
  return Predictor(config, graphdef, {"params": params, "batch_stats": stats}, step=0,
                   batch_size=8)


def _tiny_config(**model_fields):
  from configs import tiny

  return set_fields(tiny.get_config(), **{f"model__{name}": value
                                          for name, value in model_fields.items()})


@pytest.mark.parametrize("block, style, normalization, head, head_noise, readout, pool", [
    # caffe's features are in the hundreds
    ("bottleneck", "keras_v1", "caffe", "dex", 0.002, "mean", 3),
    ("basic", "v1.5", "unit", "relu", 0.2, "mean", 3),
    ("basic", "keras_v1", "imagenet", "affine", 0.2, "mean", 3),
    ("basic", "v1.5", "per_image", "dex", 0.2, "mean", 0),  # resnet18_small_input's stem
    ("basic", "v1.5", "per_image", "dex", 0.02, "median", 3),  # soft, so medians differ
])
def test_onnx_walks_every_stem_block_style_normalisation_head_and_readout(
    block, style, normalization, head, head_noise, readout, pool):
  architecture = architectures.Architecture(block, (1, 1), width=8, pool_size=pool)
  predictor = _random_predictor(architecture, head, head_noise, block_style=style,
                                input_normalization=normalization, dex_readout=readout)
  images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
  for flip_tta in (False, True):
    predictions = predictor.predict(images, flip_tta)
    assert np.ptp(predictions.ages) > 0.1  # the weights are not a constant
    # A fractional legal age: the bins of ages 0..k are under k + 0.5, as in
    # dex.probability_under; k is a photo's likeliest bin, so miscounting it would show.
    below = 17 if predictions.distributions is None else int(
        np.argmax(predictions.distributions[0]))
    legal_age = below + 0.5
    outputs = _onnx_outputs(onnx_export.build_model(predictor, legal_age, flip_tta), images)
    _assert_same_estimates(outputs, predictions, legal_age)
    if head == "dex":
      last_bin = predictions.probabilities_under(legal_age) - predictions.probabilities_under(below)
      assert last_bin.max() > 100 * PROBABILITY_TOLERANCE


def test_onnx_export_script_writes_the_model_and_the_metadata_contract(runs, tmp_path):
  out = tmp_path / "onnx"
  result = run_entry_point(["scripts/export.py", f"--workdir={runs['dex']}",
                            f"--output_dir={out}", "--format=onnx"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"to {out / 'model.onnx'} (ONNX opset 17): images float32 [N, 32, 32, 3] -> age, " \
         "age_spread, p_under_legal_age; ID check when the estimate is under 25" in result.stdout
  assert sorted(p.name for p in out.iterdir()) == ["ageflax_export.json", "model.onnx"]
  metadata = json.loads((out / "ageflax_export.json").read_text())
  assert list(metadata) == [*METADATA_KEYS, "onnx_file"]
  predictor = Predictor.from_workdir(str(runs["dex"]), batch_size=8)
  assert metadata == {
      "format": "ageflax-export-2", "kind": "onnx", "model": "_resnet_tiny", "head": "dex",
      "dex_readout": "median", "step": predictor.step, "image_size": 32, "flip_tta": False,
      "outputs": ["age", "age_spread", "p_under_legal_age"], "legal_age": 18.0,
      "challenge_age": 25.0,
      "face_framing": {"mode": "none", "min_face_fraction": 0.1, "min_score": 0.9},
      "till": {"min_photo_side": 48, "min_face_side": 40, "min_sharpness": 2.5,
               "max_noise_ratio": 2.0, "max_spread": 12.0, "max_image_megapixels": 40.0},
      "id_policy": {"legal_age": 18.0, "challenge_age": 25.0, "max_risk": None,
                    "source": "fixed rule of the run's config; no calibrated policy",
                    "description": "ID check when the estimate is under 25 (legal age 18; "
                                   "fixed rule of the run's config; no calibrated policy)"},
      "onnx_file": "model.onnx"}
  session = onnxruntime.InferenceSession(str(out / "model.onnx"),
                                         providers=["CPUExecutionProvider"])
  ages = session.run(["age"], {"images": runs["images"].astype(np.float32)})[0]
  np.testing.assert_allclose(ages, predictor.predict(runs["images"]).ages, rtol=0,
                             atol=AGE_TOLERANCE)


def _calibrated_copy(runs, tmp_path, policy: IdCheckPolicy):
  """A copy of the dex run with a calibrated policy file for its best checkpoint."""
  workdir = tmp_path / "dex"
  shutil.copytree(runs["dex"], workdir)
  step = Predictor.from_workdir(str(workdir)).step
  policy_file.write(str(workdir), step, policy, {"target": {
      "max_pass_rate": 0.2, "confidence": 0.9, "protected_ages": "13-17"}})
  return workdir, step


def test_the_calibrated_policy_goes_into_the_metadata(runs, tmp_path):
  workdir, step = _calibrated_copy(runs, tmp_path, IdCheckPolicy(18.0, 23.5, 0.2))
  out = tmp_path / "onnx"
  result = run_entry_point(["scripts/export.py", f"--workdir={workdir}", f"--output_dir={out}",
                            "--format=onnx"])
  assert result.returncode == 0, result.stderr[-3000:]
  metadata = json.loads((out / "ageflax_export.json").read_text())
  policy = metadata["id_policy"]
  assert (metadata["legal_age"], metadata["challenge_age"]) == (18.0, 23.5)
  assert (policy["legal_age"], policy["challenge_age"], policy["max_risk"]) == (18.0, 23.5, 0.2)
  assert policy["source"].startswith("calibrated: at most 20% of 13-17 pass at 90% confidence")
  assert policy["description"].startswith("ID check when the estimate is under 23.5 or "
                                          "P(age < 18) > 0.2")
  config = Predictor.from_workdir(str(workdir)).config
  with pytest.raises(ConfigError, match="calibrated without flip TTA"):
    export_metadata.export_policy(str(workdir), step, config.eval, flip_tta=True)
  other, _ = _calibrated_copy(runs, tmp_path / "other", IdCheckPolicy(18.0, 22.0))
  shutil.copy(other / "id_policy.json", workdir / "id_policy.json")
  with pytest.raises(ConfigError, match="belongs to another run or checkpoint"):
    export_metadata.export_policy(str(workdir), step, config.eval, flip_tta=False)
  (workdir / "id_policy.json").write_text("{not json")
  line = error_line(run_entry_point(["scripts/export.py", f"--workdir={workdir}",
                                     f"--output_dir={tmp_path / 'again'}", "--format=onnx"]))
  assert "id_policy.json is not a readable ID policy" in line
  assert not (tmp_path / "again").exists()


def test_savedmodel_versions_for_tf_serving(runs, tmp_path):
  base = tmp_path / "age"
  assert savedmodel.version_folder(str(base)) == str(base / "1")
  result = run_entry_point(["scripts/export.py", f"--workdir={runs['affine']}",
                            f"--output_dir={base}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"to {base / '1'} (version 1 for TF Serving, CPU and CUDA)" in result.stdout
  assert "predict_image_bytes (image_bytes string [N]) -> age;" in result.stdout
  assert sorted(p.name for p in base.iterdir()) == ["1"]
  assert (base / "1" / "saved_model.pb").exists()
  metadata = json.loads((base / "1" / "ageflax_export.json").read_text())
  assert list(metadata) == METADATA_KEYS and metadata["kind"] == "savedmodel"
  assert metadata["outputs"] == ["age"] and metadata["head"] == "affine"
  assert _platforms(base / "1") == {(b"CPU", b"CUDA")}
  assert savedmodel.version_folder(str(base)) == str(base / "2")
  assert savedmodel.version_folder(str(base), 7) == str(base / "7")
  line = error_line(run_entry_point(["scripts/export.py", f"--workdir={runs['affine']}",
                                     f"--output_dir={base}", "--version=1"]))
  assert line == (f"error: --version=1: {base / '1'} exists already; choose another version "
                  "(the next free one is 2)")
  (base / "notes.txt").write_text("")
  with pytest.raises(ConfigError, match=r"holds 'notes.txt', not only numbered version folders"):
    savedmodel.version_folder(str(base))
  with pytest.raises(ConfigError, match="--version=0: a version is a positive whole number"):
    savedmodel.version_folder(str(tmp_path / "new"), 0)
  line = error_line(run_entry_point(["scripts/export.py", f"--workdir={runs['affine']}",
                                     f"--output_dir={tmp_path / 'x'}", "--format=onnx",
                                     "--version=2"]))
  assert "--version: version folders are TF Serving's" in line


def _platforms(folder) -> set[tuple[bytes, ...]]:
  """The platforms of every jax2tf-serialised module in a SavedModel."""
  saved = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
  return {tuple(node.attr["platforms"].list.s)
          for graph in saved.meta_graphs for function in graph.graph_def.library.function
          for node in function.node_def if node.op == "XlaCallModule"}


def _jpeg(orientation: int, byte_order: str = "II") -> bytes:
  """A 48x64 photo, bright at its top left, whose EXIF says `orientation`."""
  pixels = np.zeros((48, 64, 3), np.uint8)
  pixels[:20, :24] = 230
  pixels[30:, 40:, 1] = 120
  if byte_order == "II":
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif = exif.tobytes()
  else:  # Pillow writes little-endian; cameras also write big-endian ('MM')
    entries = [struct.pack(">HHIHH", 0x010F, 2, 4, 0, 0),
               struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)]
    exif = b"Exif\0\0MM" + struct.pack(">HIH", 42, 8, 2) + b"".join(entries) + b"\0" * 4
  encoded = io.BytesIO()
  Image.fromarray(pixels).save(encoded, "JPEG", quality=95, exif=exif)
  return encoded.getvalue()


def test_exif_orientation_read_in_the_graph_as_training_reads_it(tmp_path):
  read = tf.function(tf_exif.exif_orientation, input_signature=[tf.TensorSpec([], tf.string)])
  cases = [_jpeg(o, order) for order in ("II", "MM") for o in range(0, 10)]
  png = io.BytesIO()
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, "PNG")
  cases += [png.getvalue(), b"", b"\xff\xd8\xff\xe1", _jpeg(6)[:40]]
  for index, encoded in enumerate(cases):
    path = tmp_path / f"{index}.jpg"
    path.write_bytes(encoded)
    assert int(read(tf.constant(encoded))) == image_files.exif_orientation(path), index
  assert [int(read(tf.constant(_jpeg(o)))) for o in (3, 6, 8)] == [3, 6, 8]


def test_the_bytes_signature_turns_photos_upright_as_training_does(tmp_path):
  predictor = _random_predictor(architectures.Architecture("basic", (1, 1), width=8), "dex")
  savedmodel.export_saved_model(predictor, str(tmp_path / "exported"))
  served = tf.saved_model.load(str(tmp_path / "exported"))
  paths = []
  for orientation in (1, 3, 6, 8):
    paths.append(tmp_path / f"o{orientation}.jpg")
    paths[-1].write_bytes(_jpeg(orientation, "MM" if orientation == 8 else "II"))
  outputs = served.signatures["predict_image_bytes"](
      image_bytes=tf.constant([p.read_bytes() for p in paths]))
  assert [s.decode() for s in outputs["status"].numpy()] == ["ok"] * 4
  training = np.stack([
      tf_images.load_encoded_image(tf.io.read_file(str(p)),
                                   image_files.exif_orientation(p), 32).numpy()
      for p in paths])
  np.testing.assert_array_equal(training, np.stack([photos.load_photo(str(p), 32)[0].image
                                                    for p in paths]))
  ignoring_exif = np.stack([tf_images.resize(tf_images.decode_image(p.read_bytes()), 32).numpy()
                            for p in paths])
  assert all(np.abs(training[i].astype(int) - ignoring_exif[i]).max() > 100 for i in (1, 2, 3))
  expected = predictor.predict(training)
  np.testing.assert_allclose(outputs["age"].numpy(), expected.ages, rtol=0, atol=1e-4)
  np.testing.assert_allclose(outputs["p_under_legal_age"].numpy(),
                             expected.probabilities_under(18), rtol=0, atol=1e-5)
  # Ten times the tolerance above: the served ages are those of the upright photos only.
  assert np.abs(predictor.predict(ignoring_exif).ages - expected.ages)[1:].min() > 1e-3
