"""One photo in, the till's answer out: its faces framed as in training, the ONNX model, the
trust rules and the ID-check policy.

With `face_framing.mode` 'align' every face the normaliser finds is framed like the
training photos and all of a photo's faces go through the model in one run; with 'none'
the whole photo is resized as training resizes it. An estimate the till does not trust
(`ageflax.till.trust`), and a photo without a usable face, ask for ID and say why.
"""

import dataclasses

import numpy as np
import onnxruntime

from ageflax.core import age_bands
from ageflax.core.errors import DataError
from ageflax.data.faces import FaceBox, FaceNormaliser
from ageflax.serve import uploads
from ageflax.serve.export_folder import ExportedModel
from ageflax.till.trust import TrustRules

INPUT_NAME = "images"


@dataclasses.dataclass(frozen=True)
class JudgedPhoto:
  """What the trust rules read of a photo (the fields of `ageflax.till.photos.Photo`): the
  model's input, the photo's (width, height) and the face's box (None for a whole photo)."""

  image: np.ndarray
  size: tuple[int, int]
  box: FaceBox | None


class Estimator:
  """The export's model (one ONNX Runtime session, shared by all threads) and its rules."""

  def __init__(self, exported: ExportedModel):
    self.exported = exported
    self.policy = exported.policy
    self._trust = TrustRules.from_config(exported.till)
    self._session = _open_session(exported)
    framing = exported.framing
    self._normaliser = FaceNormaliser(
        exported.image_size, framing["min_face_fraction"], framing["min_score"]
    ) if framing["mode"] == "align" else None

  def estimate(self, image: np.ndarray) -> dict:
    """The answer for an upright uint8 RGB photo [H, W, 3]: each face's estimate, band and
    ID check (with the reason), and whether the cashier asks for ID (any face asks, or none)."""
    judged = self._model_inputs(image)
    if not judged:
      return {"faces": [], "id_check": True, "reason": "no face found"}
    outputs = self.run_model(np.stack([photo.image for photo in judged]))
    faces = [self._answer(photo, {name: float(values[i]) for name, values in outputs.items()})
             for i, photo in enumerate(judged)]
    asking = [(number, face) for number, face in enumerate(faces, start=1) if face["id_check"]]
    reason = f"face {asking[0][0]}: {asking[0][1]['reason']}" if asking else None
    return {"faces": faces, "id_check": bool(asking), "reason": reason}

  def run_model(self, images: np.ndarray) -> dict[str, np.ndarray]:
    """The model's outputs (`age`, and for a dex head `age_spread`, `p_under_legal_age`)
    for uint8 images [N, S, S, 3]."""
    names = self.exported.metadata["outputs"]
    values = self._session.run(names, {INPUT_NAME: images.astype(np.float32)})
    return dict(zip(names, values, strict=True))

  def _model_inputs(self, image: np.ndarray) -> list[JudgedPhoto]:
    """The model's input for each usable face (the customer's first), or the whole photo."""
    size = (image.shape[1], image.shape[0])
    if self._normaliser is None:
      return [JudgedPhoto(uploads.resize_like_training(image, self.exported.image_size),
                          size, None)]
    return [JudgedPhoto(framed.image, size, framed.face.box)
            for framed in self._normaliser.frame_all(image)]

  def _answer(self, photo: JudgedPhoto, outputs: dict[str, float]) -> dict:
    """One face's entry of the answer."""
    age = outputs["age"]
    p_under = outputs.get("p_under_legal_age")
    reason = self._trust.distrust(photo, outputs.get("age_spread")) or self._policy_reason(
        age, p_under)
    box = photo.box or FaceBox(0, 0, *photo.size)
    return {"box": {"x": box.x, "y": box.y, "width": box.width, "height": box.height},
            "age": round(age, 4), "band": age_bands.band_of(age),
            **{name: round(value, 4) for name, value in outputs.items() if name != "age"},
            "id_check": reason is not None, "reason": reason}

  def _policy_reason(self, age: float, p_under: float | None) -> str | None:
    """Why the policy asks for ID for this estimate, or None when it does not."""
    if not self.policy.needs_id(age, p_under):
      return None
    if age < self.policy.challenge_age:
      return f"estimated {age:.1f}, under the challenge age {self.policy.challenge_age:g}"
    return (f"P(age < {self.policy.legal_age:g}) is {p_under:.3f}, above "
            f"{self.policy.max_risk:g}")


def _open_session(exported: ExportedModel) -> onnxruntime.InferenceSession:
  """The ONNX Runtime session of the export, checked against its JSON."""
  path = exported.onnx_path
  options = onnxruntime.SessionOptions()
  # Photos run side by side on the service's threads, one core each: threads within one
  # model call would only contend with them (measured: a third fewer requests/s).
  options.intra_op_num_threads = options.inter_op_num_threads = 1
  try:
    # The till has no accelerator; the CPU provider is in every onnxruntime build.
    session = onnxruntime.InferenceSession(path, sess_options=options,
                                           providers=["CPUExecutionProvider"])
  except Exception as e:  # ONNX Runtime raises its own types for every way a file is bad
    raise DataError(f"{path}: ONNX Runtime cannot load it ({str(e).strip()[:200]})") from None
  size = exported.image_size
  inputs = {node.name: node.shape for node in session.get_inputs()}
  if INPUT_NAME not in inputs or list(inputs[INPUT_NAME][1:]) != [size, size, 3]:
    raise DataError(f"{path}: expected the input {INPUT_NAME!r} [N, {size}, {size}, 3] "
                    f"(image_size in the JSON), found {inputs}")
  missing = set(exported.metadata["outputs"]) - {node.name for node in session.get_outputs()}
  if "age" not in exported.metadata["outputs"] or missing:
    raise DataError(f"{path}: lacks the outputs the JSON lists: "
                    f"{sorted(missing | ({'age'} - set(exported.metadata['outputs'])))}")
  return session
