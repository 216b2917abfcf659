"""WORKDIR/id_policy.json: the calibrated ID-check policy of one run, written and read back.

The file holds the rule, what it promises (target, confidence, the bound achieved), the
calibration photos and their counts, the expected cost, and the identity of the run and
checkpoint it was calibrated for (the workdir, the step and a hash of the run's
config.json). Reading it checks all of that: a corrupt file or one from another run or
checkpoint is a one-line error naming the file, never a silent fall-back to another rule.
"""

import dataclasses
import hashlib
import json
import os

from ageflax.core import atomic_files, run_files
from ageflax.core.errors import ConfigError
from ageflax.till.id_policy import IdCheckPolicy

FORMAT = "ageflax-id-policy-1"
FIXED_RULE_SOURCE = "fixed rule of the run's config; no calibrated policy"


def run_identity(workdir: str, step: int) -> dict:
  """The run a policy belongs to: its real path, the checkpoint step, its config's hash."""
  config_path = run_files.path(workdir, run_files.CONFIG)
  try:
    with open(config_path, "rb") as f:
      config_hash = hashlib.sha256(f.read()).hexdigest()
  except OSError as e:
    raise ConfigError(f"cannot read {config_path}: {e.strerror}") from None
  return {"workdir": os.path.realpath(workdir), "step": int(step), "config_sha256": config_hash}


def write(workdir: str, step: int, policy: IdCheckPolicy, details: dict) -> str:
  """Writes WORKDIR/id_policy.json atomically; returns its path."""
  path = run_files.path(workdir, run_files.ID_POLICY)
  contents = {"format": FORMAT, "run": run_identity(workdir, step),
              "rule": {"legal_age": policy.legal_age, "challenge_age": policy.challenge_age,
                       "max_risk": policy.max_risk, "describe": policy.describe()},
              **details}
  atomic_files.write_text_atomically(path, json.dumps(contents, indent=2) + "\n")
  return path


def exists(workdir: str) -> bool:
  return os.path.exists(run_files.path(workdir, run_files.ID_POLICY))


def read(workdir: str) -> dict:
  """The file's contents, checked for shape; ConfigError naming the file if corrupt."""
  path = run_files.path(workdir, run_files.ID_POLICY)
  try:
    with open(path, encoding="utf-8") as f:
      contents = json.load(f)
    rule = contents["rule"]
    if contents["format"] != FORMAT or not isinstance(contents["run"], dict):
      raise ValueError("unknown format")
    IdCheckPolicy(float(rule["legal_age"]), float(rule["challenge_age"]),
                  None if rule["max_risk"] is None else float(rule["max_risk"]))
    return contents
  except (OSError, ValueError, KeyError, TypeError, ConfigError) as e:
    raise ConfigError(f"{path} is not a readable ID policy ({type(e).__name__}: {e}); rerun "
                      "scripts/calibrate_policy.py") from None


def load(workdir: str, step: int) -> tuple[IdCheckPolicy, dict]:
  """The calibrated policy of checkpoint `step` of the run in `workdir`, and the file's
  contents; ConfigError naming the file if it is corrupt or belongs to another run."""
  contents = read(workdir)
  path = run_files.path(workdir, run_files.ID_POLICY)
  expected = run_identity(workdir, step)
  for key, value in expected.items():
    if contents["run"].get(key) != value:
      raise ConfigError(f"{path} belongs to another run or checkpoint ({key} "
                        f"{contents['run'].get(key)!r}, this run: {value!r}); rerun "
                        "scripts/calibrate_policy.py, or set --challenge_age/--max_risk")
  rule = contents["rule"]
  source = (f"calibrated: at most {100 * contents['target']['max_pass_rate']:g}% of "
            f"{contents['target']['protected_ages']} pass at "
            f"{100 * contents['target']['confidence']:g}% confidence, {path}")
  return IdCheckPolicy(float(rule["legal_age"]), float(rule["challenge_age"]),
                       None if rule["max_risk"] is None else float(rule["max_risk"]),
                       source), contents


def fixed_policy(eval_config) -> IdCheckPolicy:
  """The fixed rule of a run's `eval` config section, saying so."""
  return dataclasses.replace(IdCheckPolicy.from_config(eval_config), source=FIXED_RULE_SOURCE)


def run_policy(workdir: str, step: int, eval_config) -> IdCheckPolicy:
  """The policy of checkpoint `step` of the run in `workdir`: its calibrated one when it has
  WORKDIR/id_policy.json (ConfigError naming a corrupt or foreign file), else the fixed
  rule of its `eval` config section."""
  return load(workdir, step)[0] if exists(workdir) else fixed_policy(eval_config)


def refuse_flip_tta(workdir: str, flip_tta: bool, remedy: str) -> None:
  """A calibrated policy holds for the predictions it was calibrated on, made without flip
  TTA: with flip TTA on, ConfigError naming the file and `remedy`."""
  if flip_tta and exists(workdir):
    raise ConfigError(f"--flip_tta: {run_files.path(workdir, run_files.ID_POLICY)} was "
                      f"calibrated without flip TTA; {remedy}")
