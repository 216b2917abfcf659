"""The trained predictor as a TensorFlow SavedModel (jax2tf), for TF Serving or any TF runtime.

Two serving signatures run `ageflax.model.predict`'s prediction function converted to a TF
graph with a free batch dimension:
- `serving_default` (`predict_images`): float32 RGB `images` [N, S, S, 3] in [0, 255],
  already resized to the run's image size S;
- `predict_image_bytes`: string `image_bytes` [N], the encoded files (JPEG/PNG/GIF/BMP),
  decoded and resized in the graph exactly as training does (EXIF orientation is not
  applied: send upright photos).
Both return `age` [N] and, for the dex head, `age_spread` [N] and `p_under_legal_age` [N]
(P(age < the run's eval.legal_age)). The weights are variables of the SavedModel; JAX is
not needed to run it.
"""

import functools
import json
import os

import jax
import tensorflow as tf
from jax.experimental import jax2tf

from ageflax.core import atomic_files
from ageflax.data import tf_images
from ageflax.model import predict
from ageflax.till.predictor import Predictor

METADATA_FILE = "ageflax_export.json"


def export_saved_model(predictor: Predictor, out_dir: str, flip_tta: bool = False) -> dict:
  """Writes the SavedModel and `ageflax_export.json` (what it was exported from) to `out_dir`.

  Returns the metadata.
  """
  size = predictor.image_size
  legal_age = float(predictor.config.eval.legal_age)
  module = _serving_module(predictor, flip_tta, legal_age)
  tf.saved_model.save(module, out_dir, signatures={
      "serving_default": module.predict_images, "predict_images": module.predict_images,
      "predict_image_bytes": module.predict_image_bytes})
  metadata = {
      "model": predictor.config.model.name, "head": predictor.config.model.head,
      "step": predictor.step, "image_size": size, "flip_tta": flip_tta,
      "legal_age": legal_age,
      "outputs": ["age", *(["age_spread", "p_under_legal_age"] if predictor.has_distribution
                           else [])],
  }
  atomic_files.write_text_atomically(os.path.join(out_dir, METADATA_FILE),
                                     json.dumps(metadata, indent=2))
  return metadata


def _serving_module(predictor: Predictor, flip_tta: bool, legal_age: float) -> tf.Module:
  """A tf.Module holding the weights and the two signatures' tf.functions."""
  size = predictor.image_size
  # The weights travel as a flat list of tf.Variables; the JAX side rebuilds the tree.
  leaves, treedef = jax.tree.flatten(jax.device_get(predictor.variables))
  converted = jax2tf.convert(
      functools.partial(_served_outputs, treedef=treedef, graphdef=predictor.graphdef,
                        flip_tta=flip_tta, legal_age=legal_age),
      polymorphic_shapes=[None, f"(b, {size}, {size}, 3)"], with_gradient=False)
  module = tf.Module()
  module.weights = [tf.Variable(leaf, trainable=False) for leaf in leaves]

  def serve(images):
    return converted(module.weights, images)

  @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, "images")],
               autograph=False)
  def predict_images(images):
    return serve(images)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")],
               autograph=False)
  def predict_image_bytes(image_bytes):
    images = tf.map_fn(
        lambda encoded: tf_images.resize(tf_images.decode_image(encoded), size),
        image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))
    return serve(tf.cast(images, tf.float32))

  module.predict_images = predict_images
  module.predict_image_bytes = predict_image_bytes
  return module


def _served_outputs(leaves, images, *, treedef, graphdef, flip_tta: bool,
                    legal_age: float) -> dict:
  """The signatures' outputs: the age, and the dex head's spread and P(age < legal age)."""
  variables = jax.tree.unflatten(treedef, leaves)
  outputs = predict.make_predict_fn(graphdef, flip_tta)(variables, images)
  return predict.served_outputs(outputs, legal_age)
