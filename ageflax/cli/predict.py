"""Ages for photos at the till: estimate, age band and the ID-check answer for each photo.

  python scripts/predict.py --workdir=runs/r50 photo.jpg more/*.jpg folder/ [--csv=list.csv]
      [--detect_faces] [--flip_tta] [--max_risk=0.05] [--output=ages.csv|ages.json]

Restores the run's best checkpoint, loads the photos on a thread pool while the jitted
model estimates the previous batch, and prints one row per photo (per face with
--detect_faces): file, age (one decimal), age band and `ID check: yes/no` (estimate under
the challenge age, or, for a dex-head run with --max_risk, P(age < legal age) above it).
The run's calibrated policy (WORKDIR/id_policy.json, scripts/calibrate_policy.py) decides
by default; --challenge_age/--max_risk override it, and every output names the policy.
An unreadable photo or one without a face gets a row that says why (and `yes`), as does a
photo whose estimate is not trusted (too small, blurred, noise, or a wide spread: the run
config's `till` section, see `ageflax.till.trust`).
"""

import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import os
import sys
import time

import numpy as np
from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core import run_files
from ageflax.core.errors import ConfigError
from ageflax.core.progress import Progress
from ageflax.data import faces
from ageflax.till import photos, policy_file, prediction_rows
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictor
from ageflax.till.trust import TrustRules

_WORKDIR = shared_flags.define_workdir()
_CSV = flags.DEFINE_string("csv", None, "A CSV listing photos (paths relative to its folder).")
_CSV_COLUMN = flags.DEFINE_string("csv_column", "file_name", "The --csv column with the paths.")
_CSV_ROOT = flags.DEFINE_string("csv_root", None, "Folder the --csv paths are relative to; "
                                "default: the CSV's (final_files/ for a study labels.csv).")
_STEP = shared_flags.define_step()
_BATCH_SIZE = shared_flags.define_batch_size("Photos per model call; default: eval's.")
_THREADS = flags.DEFINE_integer("threads", 0, "Photo-loading threads; 0: one per CPU core.")
_FLIP_TTA = shared_flags.define_flip_tta("Estimate each photo as the mean over it and its "
                                         "mirror image.")
_DETECT_FACES = flags.DEFINE_bool("detect_faces", None,
                                  "Find the faces in each photo and estimate each, framed by "
                                  "the face normaliser like the training photos; default: "
                                  "on when the run was trained with data.face_framing.mode="
                                  "'align'.")
_LEGAL_AGE, _CHALLENGE_AGE = shared_flags.define_id_check_ages()
_MAX_RISK = flags.DEFINE_float("max_risk", None,
                               "dex head only: also ask for ID when P(age < legal age) is "
                               "above this probability.")
_OUTPUT = shared_flags.define_output_file("Write the rows to this .csv or .json file instead "
                                         "of printing the table.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  if _OUTPUT.value:
    prediction_rows.check_output_path(_OUTPUT.value)
  paths = photos.list_photos(argv[1:], _CSV.value, _CSV_COLUMN.value, _CSV_ROOT.value)
  predictor = Predictor.from_workdir(_WORKDIR.value, _STEP.value, _BATCH_SIZE.value)
  policy = _policy(predictor)
  trust = TrustRules.from_config(predictor.config.till)
  normaliser = _normaliser(predictor)
  load = functools.partial(photos.load_photo, image_size=predictor.image_size,
                           normaliser=normaliser,
                           max_megapixels=predictor.config.data.max_image_megapixels)
  framing = "; each face framed by the face normaliser" if normaliser else ""
  print(f"{predictor.describe()}; {len(paths):,} photos{framing}; {policy.describe()}",
        file=sys.stderr)
  compile_seconds = _warm_up(predictor)
  several_batches = len(paths) > predictor.batch_size
  rows, progress = [], Progress(len(paths), "{done:,}/{total:,} photos", every_seconds=5.0,
                                log_fn=_print_to_stderr if several_batches else None,
                                bar=several_batches)
  threads = _THREADS.value or os.cpu_count() or 1
  with concurrent.futures.ThreadPoolExecutor(threads) as executor:
    for chunk, done in _loaded_in_chunks(paths, load, predictor.batch_size, executor):
      images = [photo.image for photo in chunk if photo.image is not None]
      predictions = predictor.predict(np.stack(images), _FLIP_TTA.value) if images else None
      rows += prediction_rows.rows_for(chunk, predictions, policy, trust)
      progress.update(done)
  _finish(rows, policy, predictor, normaliser is not None, progress.rate(len(paths)),
          compile_seconds, len(paths))


def _print_to_stderr(line: str) -> None:
  print(line, file=sys.stderr)


def _policy(predictor: Predictor) -> IdCheckPolicy:
  """The run's calibrated policy (WORKDIR/id_policy.json) unless --challenge_age or --max_risk
  set the rule; without either, the run config's fixed rule."""
  if _MAX_RISK.value is not None and not predictor.has_distribution:
    raise ConfigError(f"--max_risk needs a run trained with model.head='dex' (its P(age < "
                      f"legal age)); {_WORKDIR.value} has the {predictor.config.model.head!r} "
                      "head")
  overridden = _CHALLENGE_AGE.value is not None or _MAX_RISK.value is not None
  if not overridden and policy_file.exists(_WORKDIR.value):
    return _calibrated_policy(predictor)
  policy = IdCheckPolicy.from_config(predictor.config.eval, _LEGAL_AGE.value, _CHALLENGE_AGE.value,
                                     _MAX_RISK.value)
  return dataclasses.replace(policy, source="set by --challenge_age/--max_risk" if overridden
                             else policy_file.FIXED_RULE_SOURCE)


def _calibrated_policy(predictor: Predictor) -> IdCheckPolicy:
  """The calibrated policy, refused where this prediction differs from its calibration."""
  policy, _ = policy_file.load(_WORKDIR.value, predictor.step)
  path = run_files.path(_WORKDIR.value, run_files.ID_POLICY)
  if _LEGAL_AGE.value is not None and _LEGAL_AGE.value != policy.legal_age:
    raise ConfigError(f"--legal_age={_LEGAL_AGE.value:g}: {path} was calibrated for legal age "
                      f"{policy.legal_age:g}; recalibrate, or set --challenge_age/--max_risk")
  policy_file.refuse_flip_tta(_WORKDIR.value, _FLIP_TTA.value,
                              "drop the flag, or set --challenge_age/--max_risk")
  return policy


def _normaliser(predictor: Predictor) -> faces.FaceNormaliser | None:
  """The run's face normaliser, unless --detect_faces says otherwise."""
  data = predictor.config.data
  detect = _DETECT_FACES.value
  if detect is None:
    detect = data.face_framing.mode == "align"
  return faces.FaceNormaliser.from_config(data) if detect else None


def _warm_up(predictor: Predictor) -> float:
  """Compiles the model on a blank batch so the rate below is the steady one."""
  start = time.perf_counter()
  size = predictor.image_size
  predictor.predict(np.zeros((1, size, size, 3), np.uint8), _FLIP_TTA.value)
  return time.perf_counter() - start


def _loaded_in_chunks(paths, load, chunk_size: int, executor):
  """Yields (loaded photos, photos done so far), about `chunk_size` at a time, in order;
  at most two chunks are loading ahead, so memory stays flat on long lists."""
  remaining = iter(paths)
  window = collections.deque(executor.submit(load, path)
                             for path in itertools.islice(remaining, 2 * chunk_size))
  chunk, done = [], 0
  while window:
    chunk += window.popleft().result()
    done += 1
    upcoming = next(remaining, None)
    if upcoming is not None:
      window.append(executor.submit(load, upcoming))
    if len(chunk) >= chunk_size or not window:
      yield chunk, done
      chunk = []


def _finish(rows, policy, predictor, detect_faces: bool, rate: float, compile_seconds: float,
            num_photos: int):
  counts = prediction_rows.summary(rows)
  if _OUTPUT.value:
    about = {"workdir": os.path.abspath(_WORKDIR.value), "model": predictor.describe(),
             "policy": policy.describe(), "flip_tta": _FLIP_TTA.value,
             "detect_faces": detect_faces, **counts}
    prediction_rows.write_rows(_OUTPUT.value, rows, about)
  else:
    print(prediction_rows.format_table(rows, policy))
  faces = f" ({counts['estimates']:,} faces)" if detect_faces else ""
  print(f"{num_photos:,} photos{faces}: {counts['estimates']:,} estimates, "
        f"{counts['id_checks']:,} ID checks, {counts['without_estimate']:,} without an "
        f"estimate; {rate:.1f} photos/s (compiling took {compile_seconds:.1f}s)"
        + (f"; wrote {_OUTPUT.value}" if _OUTPUT.value else ""), file=sys.stderr)



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
