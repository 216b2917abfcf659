"""The one pure prediction function: a model's variables and images in, its estimates out.

`predict_outputs` is what every consumer runs: training validation and `scripts/eval.py`
(through `ageflax.evaluate.evaluator`), the predictor at the till and the SavedModel export.
Flip test-time augmentation averages over mirror images (`mirror_mean`), and
`served_outputs` turns the dex head's distribution into the spread and P(age < t) a till
needs, so every consumer computes the same numbers. This module never imports TensorFlow.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
from flax import nnx

from ageflax.model import dex

# (variables {'params', 'batch_stats'}, images [B, S, S, 3]) -> {'age': [B], ...}
PredictFn = Callable[[Mapping, jax.Array], dict[str, jax.Array]]


def predict_outputs(variables: Mapping, images: jax.Array, *, graphdef: nnx.GraphDef,
                    flip_tta: bool = False) -> dict[str, jax.Array]:
  """{'age': [B]} for uint8/float RGB images [B, S, S, 3] in [0, 255], in inference mode.

  For the dex head also 'distribution' [B, bins], P(age = k) for k = 0..model.dex_max_age,
  and the age is read from it (model.dex_readout).

  Args:
    variables: the model's {'params': ..., 'batch_stats': ...}.
    images: the pictures, already resized to the run's image size.
    graphdef: the model's static graph definition.
    flip_tta: average over each image and its mirror image: the dex head's distributions
      before the age is read from them, the other heads' ages.
  """
  model = nnx.merge(graphdef, variables["params"], variables["batch_stats"])

  def over_images(fn: Callable[[jax.Array], jax.Array]) -> jax.Array:
    return mirror_mean(fn, images) if flip_tta else fn(images)

  if model.head_kind == "dex":
    distribution = over_images(model.age_distribution)
    return {"age": model.age_from_distribution(distribution), "distribution": distribution}
  return {"age": over_images(model)}


def mirror_mean(fn: Callable[[jax.Array], Any], images: jax.Array) -> Any:
  """The mean of `fn`'s outputs (arrays or a tree of them) over `images` [B, S, S, 3] and
  their mirror images."""
  return jax.tree.map(lambda a, b: (a + b) / 2, fn(images), fn(images[:, :, ::-1, :]))


def make_predict_fn(graphdef: nnx.GraphDef, flip_tta: bool = False) -> PredictFn:
  """`predict_outputs` of one model, with flip test-time augmentation when `flip_tta`."""
  return functools.partial(predict_outputs, graphdef=graphdef, flip_tta=flip_tta)


def served_outputs(outputs: Mapping[str, jax.Array], legal_age: float) -> dict[str, jax.Array]:
  """The age, and for the dex head each photo's spread and P(age < `legal_age`)."""
  if "distribution" not in outputs:
    return {"age": outputs["age"]}
  distribution = outputs["distribution"]
  return {"age": outputs["age"], "age_spread": dex.age_spread(distribution),
          "p_under_legal_age": dex.probability_under(distribution, legal_age)}
