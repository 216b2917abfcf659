"""`ageflax_export.json`: what an exported model is and the rules a till applies around it.

One description for both export formats (SavedModel and ONNX), so a till service that reads
only this file and the model needs neither JAX nor TensorFlow: the model, head (a dex
head's readout: its distribution's mean or median), checkpoint, image size and outputs; the
face framing the run trained with; the `till` section's limits for not trusting an
estimate; and the ID-check policy (the run's calibrated one, from WORKDIR/id_policy.json,
else the fixed rule of its config), with where it comes from.
This module imports neither TensorFlow nor JAX: the service reads its FILE and FORMAT.
"""

import json
import os
from typing import TYPE_CHECKING

from ageflax.core import atomic_files
from ageflax.till import policy_file
from ageflax.till.id_policy import IdCheckPolicy

if TYPE_CHECKING:  # the till service reads FILE and FORMAT without JAX
  from ageflax.till.predictor import Predictor

FILE = "ageflax_export.json"
FORMAT = "ageflax-export-2"
KINDS = ("savedmodel", "onnx")
# The `till` section's limits (`ageflax.till.trust`) and their JSON types.
_TRUST_FIELDS = {"min_photo_side": int, "min_face_side": int, "min_sharpness": float,
                 "max_noise_ratio": float, "max_spread": float}


def export_policy(workdir: str, step: int, eval_config, flip_tta: bool) -> IdCheckPolicy:
  """The policy an export of checkpoint `step` carries (`policy_file.run_policy`); a
  calibrated one is refused with flip TTA baked in, as it was calibrated without."""
  policy = policy_file.run_policy(workdir, step, eval_config)
  policy_file.refuse_flip_tta(workdir, flip_tta, "export without --flip_tta")
  return policy


def describe(predictor: "Predictor", kind: str, flip_tta: bool, policy: IdCheckPolicy,
             **files: str) -> dict:
  """The metadata of an export of `predictor` of format `kind` (one of KINDS); `files` names
  the model's files in the export folder (ONNX: `onnx_file`)."""
  config = predictor.config
  framing = config.data.face_framing
  return {
      "format": FORMAT, "kind": kind, "model": config.model.name, "head": config.model.head,
      "dex_readout": config.model.dex_readout if predictor.has_distribution else None,
      "step": int(predictor.step), "image_size": int(predictor.image_size),
      "flip_tta": bool(flip_tta),
      "outputs": ["age", *(["age_spread", "p_under_legal_age"] if predictor.has_distribution
                           else [])],
      "legal_age": float(policy.legal_age), "challenge_age": float(policy.challenge_age),
      "face_framing": {"mode": framing.mode,
                       "min_face_fraction": float(framing.min_face_fraction),
                       "min_score": float(framing.min_score)},
      "till": {**{name: kind_of(config.till[name]) for name, kind_of in _TRUST_FIELDS.items()},
               "max_image_megapixels": float(config.data.max_image_megapixels)},
      "id_policy": {"legal_age": float(policy.legal_age),
                    "challenge_age": float(policy.challenge_age),
                    "max_risk": None if policy.max_risk is None else float(policy.max_risk),
                    "source": policy.source, "description": policy.describe()},
      **files,
  }


def write(out_dir: str, metadata: dict) -> str:
  """Writes `metadata` to OUT_DIR/ageflax_export.json whole or not at all; returns its path."""
  path = os.path.join(out_dir, FILE)
  atomic_files.write_text_atomically(path, json.dumps(metadata, indent=2) + "\n")
  return path
