"""The one pure prediction function: a model's variables and images in, its estimates out.

`predict_outputs` is what every consumer runs: training validation and `scripts/eval.py`
(through `ageflax.evaluate.evaluator`), the predictor at the till and the SavedModel export.
Flip test-time augmentation is a variant of it (`with_flip_tta`, `make_predict_fn`), and `served_outputs`
turns the dex head's distribution into the spread and P(age < t) a till needs, so every
consumer computes the same numbers. This module never imports TensorFlow.
"""

import functools
from collections.abc import Callable, Mapping

import jax
from flax import nnx

from ageflax.model import dex

# (variables {'params', 'batch_stats'}, images [B, S, S, 3]) -> {'age': [B], ...}
PredictFn = Callable[[Mapping, jax.Array], dict[str, jax.Array]]


def predict_outputs(variables: Mapping, images: jax.Array, *,
                    graphdef: nnx.GraphDef) -> dict[str, jax.Array]:
  """{'age': [B]} for uint8/float RGB images [B, S, S, 3] in [0, 255], in inference mode.

  For the dex head also 'distribution' [B, bins], P(age = k) for k = 0..model.dex_max_age.

  Args:
    variables: the model's {'params': ..., 'batch_stats': ...}.
    images: the pictures, already resized to the run's image size.
    graphdef: the model's static graph definition.
  """
  model = nnx.merge(graphdef, variables["params"], variables["batch_stats"])
  if model.head_kind == "dex":
    distribution = model.age_distribution(images)
    return {"age": dex.expected_age(distribution), "distribution": distribution}
  return {"age": model(images)}


def with_flip_tta(predict_fn: PredictFn) -> PredictFn:
  """`predict_fn` as the mean of every output over each image and its mirror image."""

  def predict(variables: Mapping, images: jax.Array) -> dict[str, jax.Array]:
    plain = predict_fn(variables, images)
    mirrored = predict_fn(variables, images[:, :, ::-1, :])
    return jax.tree.map(lambda a, b: (a + b) / 2, plain, mirrored)

  return predict


def make_predict_fn(graphdef: nnx.GraphDef, flip_tta: bool = False) -> PredictFn:
  """`predict_outputs` of one model, with flip test-time augmentation when `flip_tta`."""
  plain = functools.partial(predict_outputs, graphdef=graphdef)
  return with_flip_tta(plain) if flip_tta else plain


def served_outputs(outputs: Mapping[str, jax.Array], legal_age: float) -> dict[str, jax.Array]:
  """The age, and for the dex head each photo's spread and P(age < `legal_age`)."""
  if "distribution" not in outputs:
    return {"age": outputs["age"]}
  distribution = outputs["distribution"]
  return {"age": outputs["age"], "age_spread": dex.age_spread(distribution),
          "p_under_legal_age": dex.probability_under(distribution, legal_age)}
