"""The ONNX export folder the service reads: `model.onnx` and `ageflax_export.json`, checked.

The JSON (format `ageflax-export-2`, kind `onnx`, written by `scripts/export.py
--format=onnx`) says what the model is, how its photos were framed in training, the trust
rules of the till and the ID-check policy. A folder that is missing, lacks a file, or holds
a JSON of another format or with a missing or mistyped field is one error naming the file.
"""

import dataclasses
import json
import os

from ageflax.core.errors import ConfigError, DataError
from ageflax.till.export_metadata import FILE as METADATA_FILE
from ageflax.till.export_metadata import FORMAT
from ageflax.till.id_policy import IdCheckPolicy

_NUMBER = (int, float)
# Every field the service reads, with the types it accepts (bool is no number here).
_FIELDS = {
    "model": str, "head": str, "step": int, "image_size": int, "flip_tta": bool,
    "outputs": list, "onnx_file": str, "legal_age": _NUMBER,
    "face_framing.mode": str, "face_framing.min_face_fraction": _NUMBER,
    "face_framing.min_score": _NUMBER,
    "till.min_photo_side": int, "till.min_face_side": int, "till.min_sharpness": _NUMBER,
    "till.max_noise_ratio": _NUMBER, "till.max_spread": _NUMBER,
    "till.max_image_megapixels": _NUMBER,
    "id_policy.legal_age": _NUMBER, "id_policy.challenge_age": _NUMBER,
    "id_policy.max_risk": (*_NUMBER, type(None)), "id_policy.source": str,
}
_FRAMING_MODES = ("none", "align")


@dataclasses.dataclass(frozen=True)
class ExportedModel:
  """An export folder, read and checked: its ONNX file and its JSON's fields."""

  folder: str
  onnx_path: str
  metadata: dict
  policy: IdCheckPolicy

  @property
  def image_size(self) -> int:
    return self.metadata["image_size"]

  @property
  def framing(self) -> dict:
    return self.metadata["face_framing"]

  @property
  def till(self) -> dict:
    return self.metadata["till"]

  def describe(self) -> dict:
    """What the service answers with: the model, its step and how it frames photos."""
    keys = ("model", "head", "step", "image_size", "flip_tta")
    return {**{key: self.metadata[key] for key in keys},
            "face_framing": self.framing["mode"]}


def read_export(folder: str) -> ExportedModel:
  """The export in `folder`; DataError naming the folder or file at fault."""
  if not os.path.isdir(folder):
    raise DataError(f"{folder}: no such folder (name a folder written by scripts/export.py "
                    "--format=onnx)")
  path = os.path.join(folder, METADATA_FILE)
  metadata = _read_json(path)
  if metadata.get("format") != FORMAT or metadata.get("kind") != "onnx":
    raise DataError(f"{path}: not an ONNX export of format {FORMAT!r} (format "
                    f"{metadata.get('format')!r}, kind {metadata.get('kind')!r}); export the "
                    "run again with scripts/export.py --format=onnx")
  for field, types in _FIELDS.items():
    _check_field(path, metadata, field, types)
  if metadata["face_framing"]["mode"] not in _FRAMING_MODES:
    raise DataError(f"{path}: face_framing.mode must be one of {_FRAMING_MODES}, not "
                    f"{metadata['face_framing']['mode']!r}")
  onnx_path = os.path.join(folder, metadata["onnx_file"])
  if not os.path.isfile(onnx_path):
    raise DataError(f"{onnx_path}: missing (the model {path} names)")
  rule = metadata["id_policy"]
  if rule["legal_age"] != metadata["legal_age"]:
    raise DataError(f"{path}: id_policy.legal_age ({rule['legal_age']:g}) differs from the "
                    f"legal age of the model's p_under_legal_age ({metadata['legal_age']:g})")
  try:
    policy = IdCheckPolicy(float(rule["legal_age"]), float(rule["challenge_age"]),
                           rule["max_risk"], rule["source"])
  except ConfigError as e:
    raise DataError(f"{path}: id_policy: {e}") from None
  return ExportedModel(folder, onnx_path, metadata, policy)


def _read_json(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      metadata = json.load(f)
  except FileNotFoundError:
    raise DataError(f"{path}: missing; is this a folder written by scripts/export.py "
                    "--format=onnx?") from None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DataError(f"{path}: unreadable ({e})") from None
  if not isinstance(metadata, dict):
    raise DataError(f"{path}: not a JSON object")
  return metadata


def _check_field(path: str, metadata: dict, field: str, types) -> None:
  """Raises DataError unless `field` (dotted into sections) is present with one of `types`."""
  value = metadata
  for key in field.split("."):
    if not isinstance(value, dict) or key not in value:
      raise DataError(f"{path}: no field {field!r}")
    value = value[key]
  if isinstance(value, bool) != (types is bool) or not isinstance(value, types):
    raise DataError(f"{path}: field {field!r} has the wrong type ({value!r})")
