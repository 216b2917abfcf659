"""The trained predictor as a TensorFlow SavedModel (jax2tf), for TF Serving or any TF runtime.

Two serving signatures run `ageflax.model.predict`'s prediction function converted to a TF
graph with a free batch dimension, serialised for both CPU and CUDA (one SavedModel serves
on either):
- `serving_default` (`predict_images`): float32 RGB `images` [N, S, S, 3] in [0, 255],
  already resized to the run's image size S;
- `predict_image_bytes`: string `image_bytes` [N], the encoded files (JPEG or PNG),
  decoded, turned upright by their EXIF orientation (`till.tf_exif`) and resized in the
  graph exactly as training does. Each photo is checked first, without decoding, as
  training checks files: its signature, its end marker, and the pixel count its header
  declares (`data.max_image_megapixels`); one that fails gets NaN outputs and its reason in
  `status` [N] (`ok` for the others), and the rest of the batch is served.
Both return `age` [N] and, for the dex head, `age_spread` [N] and `p_under_legal_age` [N]
(P(age < the exported policy's legal age)). The weights are variables of the SavedModel; JAX
is not needed to run it. `ageflax_export.json` beside it (`till.export_metadata`) says what
it is and which ID-check policy goes with it. TF Serving wants each version in a numbered
folder under the model's base path: the export entry point chooses it.
"""

import functools
import os
import shutil
import tempfile

import jax
import tensorflow as tf
from jax.experimental import jax2tf

from ageflax.core.errors import ConfigError
from ageflax.data import tf_images
from ageflax.model import predict
from ageflax.till import export_metadata, policy_file, tf_exif
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictor

# Serialised for both, so the same SavedModel serves on a CPU and on a CUDA GPU.
PLATFORMS = ("cpu", "cuda")


def export_saved_model(predictor: Predictor, out_dir: str, flip_tta: bool = False,
                       policy: IdCheckPolicy | None = None) -> dict:
  """Writes the SavedModel and `ageflax_export.json` to `out_dir`; returns the metadata.

  Args:
    predictor: the restored run.
    out_dir: the folder to write (TF Serving: a numbered version folder).
    flip_tta: bake flip test-time augmentation into the graph.
    policy: the ID-check policy the metadata carries, whose legal age P(age < legal age)
      uses; default: the fixed rule of the run's config.
  """
  policy = policy or policy_file.fixed_policy(predictor.config.eval)
  module = _serving_module(predictor, flip_tta, policy.legal_age)
  parent, name = os.path.split(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  # Written beside and renamed into place, so TF Serving, which watches the base folder,
  # never loads a half-written version.
  partial = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent)
  try:
    tf.saved_model.save(module, partial, signatures={
        "serving_default": module.predict_images, "predict_images": module.predict_images,
        "predict_image_bytes": module.predict_image_bytes})
    metadata = export_metadata.describe(predictor, "savedmodel", flip_tta, policy)
    export_metadata.write(partial, metadata)
    os.chmod(partial, 0o755)
    os.replace(partial, out_dir)
  finally:
    shutil.rmtree(partial, ignore_errors=True)
  return metadata


def version_folder(base: str, version: int | None = None) -> str:
  """BASE/N, the folder of version N of a model under TF Serving's base path `base`: `version`,
  or the next free number. ConfigError if it exists, or if `base` holds anything else than
  numbered version folders."""
  if os.path.exists(base) and not os.path.isdir(base):
    raise ConfigError(f"--output_dir={base} is a file; name the model's base folder")
  # Hidden entries (a version being written, a file manager's) are no versions; TF Serving
  # skips them too.
  entries = sorted(entry for entry in (os.listdir(base) if os.path.isdir(base) else [])
                   if not entry.startswith("."))
  others = [entry for entry in entries
            if not (entry.isdigit() and os.path.isdir(os.path.join(base, entry)))]
  if others:
    raise ConfigError(f"--output_dir={base} holds {others[0]!r}, not only numbered version "
                      "folders (TF Serving's layout); name a new folder or a model's base folder")
  next_free = max((int(entry) for entry in entries), default=0) + 1
  if version is None:
    version = next_free
  if version < 1:
    raise ConfigError(f"--version={version}: a version is a positive whole number")
  folder = os.path.join(base, str(version))
  if os.path.exists(folder):
    raise ConfigError(f"--version={version}: {folder} exists already; choose another version "
                      f"(the next free one is {next_free})")
  return folder


def _serving_module(predictor: Predictor, flip_tta: bool, legal_age: float) -> tf.Module:
  """A tf.Module holding the weights and the two signatures' tf.functions."""
  size = predictor.image_size
  # The weights travel as a flat list of tf.Variables; the JAX side rebuilds the tree.
  leaves, treedef = jax.tree.flatten(jax.device_get(predictor.variables))
  converted = jax2tf.convert(
      functools.partial(_served_outputs, treedef=treedef, graphdef=predictor.graphdef,
                        flip_tta=flip_tta, legal_age=legal_age),
      polymorphic_shapes=[None, f"(b, {size}, {size}, 3)"], with_gradient=False,
      native_serialization_platforms=PLATFORMS)
  module = tf.Module()
  module.weights = [tf.Variable(leaf, trainable=False) for leaf in leaves]

  def serve(images):
    return converted(module.weights, images)

  @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, "images")],
               autograph=False)
  def predict_images(images):
    return serve(images)

  max_pixels = predictor.config.data.max_image_megapixels * 1e6

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")],
               autograph=False)
  def predict_image_bytes(image_bytes):
    status = tf.map_fn(lambda encoded: _byte_problem(encoded, max_pixels), image_bytes,
                       fn_output_signature=tf.TensorSpec([], tf.string))
    usable = tf.equal(status, "")
    images = tf.map_fn(
        lambda row: tf.cond(row[1], lambda: _upright_and_resized(row[0], size),
                            lambda: tf.zeros([size, size, 3], tf.uint8)),
        (image_bytes, usable), fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))
    outputs = serve(tf.cast(images, tf.float32))
    # A photo that cannot be read gets no estimate, and says why; the others are served.
    outputs = {name: tf.where(usable, value, tf.fill(tf.shape(value), float("nan")))
               for name, value in outputs.items()}
    return {**outputs, "status": tf.where(usable, "ok", status)}

  module.predict_images = predict_images
  module.predict_image_bytes = predict_image_bytes
  return module


def _upright_and_resized(encoded: tf.Tensor, size: int) -> tf.Tensor:
  """One photo's bytes as training loads them: decoded, turned upright, resized."""
  return tf_images.load_encoded_image(encoded, tf_exif.exif_orientation(encoded), size)


def _byte_problem(encoded: tf.Tensor, max_pixels: float) -> tf.Tensor:
  """Why one photo's bytes cannot be served ('' when they can), read without decoding: its
  format signature, a JPEG's or PNG's end marker, and the pixel count its header declares
  (as training's checks, so a few bytes declaring a giant picture are never decoded)."""
  head = tf.strings.substr(encoded, 0, 8)
  is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff")
  is_png = tf.equal(head, b"\x89PNG\r\n\x1a\n")
  length = tf.strings.length(encoded)
  tail = tf.strings.substr(encoded, tf.maximum(length - 8, 0), 8)
  complete = tf.logical_or(
      tf.logical_and(is_jpeg, tf.equal(tf.strings.substr(tail, 6, 2), b"\xff\xd9")),
      tf.logical_and(is_png, tf.equal(tail, b"IEND\xaeB`\x82")))
  pixels = tf.cond(is_png, lambda: _png_pixels(encoded),
                   lambda: tf.cond(tf.logical_and(is_jpeg, complete),
                                   lambda: _jpeg_pixels(encoded), lambda: tf.constant(0.0)))
  problem = tf.where(tf.logical_not(tf.logical_or(is_jpeg, is_png)),
                     "not a JPEG or PNG image", "")
  problem = tf.where(tf.logical_and(tf.equal(problem, ""), tf.logical_not(complete)),
                     "truncated image (no end marker)", problem)
  return tf.where(tf.logical_and(tf.equal(problem, ""), pixels > max_pixels),
                  f"declares over {max_pixels / 1e6:g} megapixels", problem)


def _png_pixels(encoded: tf.Tensor) -> tf.Tensor:
  """Width x height from a PNG's IHDR chunk (big-endian, bytes 16-23)."""
  sides = tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.uint8)
  sides = tf.cast(tf.reshape(sides, [2, 4]), tf.float32)
  return tf.reduce_prod(tf.reduce_sum(sides * [2.0**24, 2.0**16, 2.0**8, 1.0], axis=1))


def _jpeg_pixels(encoded: tf.Tensor) -> tf.Tensor:
  return tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.float32))


def _served_outputs(leaves, images, *, treedef, graphdef, flip_tta: bool,
                    legal_age: float) -> dict:
  """The signatures' outputs: the age, and the dex head's spread and P(age < legal age)."""
  variables = jax.tree.unflatten(treedef, leaves)
  outputs = predict.make_predict_fn(graphdef, flip_tta)(variables, images)
  return predict.served_outputs(outputs, legal_age)
