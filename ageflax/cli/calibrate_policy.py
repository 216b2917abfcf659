"""Calibrates a run's ID-check policy on photos it never trained on, with a stated guarantee.

  python scripts/calibrate_policy.py --workdir=runs/r50 [--split=validation | --data_dir=DIR]
      [--max_pass_rate=0.01] [--confidence=0.95] [--protected_ages=13-17]

Chooses the rule that asks the fewest adults while, with the stated confidence, at most
--max_pass_rate of protected customers (true age in --protected_ages) would pass without
an ID check: exact Clopper-Pearson bounds and fixed-sequence testing over rules fixed in
advance (`ageflax.evaluate.policy_calibration` says why). Writes WORKDIR/id_policy.json,
which scripts/predict.py and scripts/eval.py then use, and id_policy_tradeoff.png. When the
photos hold too few protected customers for the target it writes nothing and says, in one
line, the strongest guarantee they support and how many photos the target needs: a policy
file never states a target its own counts do not meet. Where the photos carry group fields
(--group_columns, --group_from_file_names) the chosen rule's and the Challenge rule's rates
per group go into id_policy.json under `groups` and onto the console.
"""

import os

import numpy as np
from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core import run_files, sharding
from ageflax.core.errors import ConfigError
from ageflax.data import pipeline
from ageflax.evaluate import evaluator, groups, plots
from ageflax.evaluate import policy_calibration as calibration
from ageflax.model import predict
from ageflax.till import policy_file
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.train import loop, restore

_WORKDIR = shared_flags.define_workdir()
_DATA_DIR = shared_flags.define_data_dir("Folder of labelled photos to calibrate on (e.g. the "
                                         "store's own camera); default: the run's own data.")
_SPLIT = flags.DEFINE_enum("split", None, ["all", "validation", "test"],
                           "Which photos: default 'all' for another folder, 'validation' for "
                           "the run's own (never its training photos).")
_STEP = shared_flags.define_step()
_BATCH_SIZE = shared_flags.define_batch_size("Global batch size; default: eval's.")
_MAX_PASS_RATE = flags.DEFINE_float("max_pass_rate", 0.01, "The largest share of protected "
                                    "customers the store accepts passing without ID.")
_CONFIDENCE = flags.DEFINE_float("confidence", 0.95, "How sure the bound must be, in (0, 1).")
_PROTECTED = flags.DEFINE_string("protected_ages", "13-17", "True ages protected, whole years "
                                 "A-B below the legal age (0-17: all minors).")
_RULES = flags.DEFINE_list("rules", None, "Rule families to consider (age, probability, "
                           "combined); default: all the run's head allows.")
_COMBINED_RISK = flags.DEFINE_float("combined_max_risk", 0.1, "The combined rule's P(age < "
                                    "legal age) limit, fixed before calibrating.")
_LEGAL_AGE = flags.DEFINE_float("legal_age", None, "The youngest age that may buy alcohol; "
                                "default: the run's eval.legal_age.")
_GROUP_COLUMNS, _GROUP_FROM_FILE_NAMES = shared_flags.define_group_fields()


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  calibration.check_probability(_MAX_PASS_RATE.value, "--max_pass_rate")
  calibration.check_probability(_CONFIDENCE.value, "--confidence")
  calibration.check_probability(_COMBINED_RISK.value, "--combined_max_risk")
  mesh = sharding.create_mesh()
  run = restore.restore_run(_WORKDIR.value, _STEP.value, mesh)
  config = run.config
  legal_age = config.eval.legal_age if _LEGAL_AGE.value is None else _LEGAL_AGE.value
  protected_ages = calibration.parse_age_range(_PROTECTED.value, legal_age)
  kinds = _rule_kinds(config.model.head == "dex")
  split = _choose_split(config)
  common.set_group_fields(config, _GROUP_COLUMNS.value, _GROUP_FROM_FILE_NAMES.value)
  ages, estimates, p_under, photo_groups = _predictions(run, config, split, legal_age, mesh)
  families = _families(kinds, estimates, p_under, legal_age)
  protected = calibration.in_range(ages, protected_ages)
  scans, best = calibration.choose(families, protected, ages >= legal_age,
                                   _MAX_PASS_RATE.value, _CONFIDENCE.value)
  if best is None:
    raise ConfigError(calibration.shortfall(scans, _MAX_PASS_RATE.value, _CONFIDENCE.value))
  scan, index = best
  policy = IdCheckPolicy(legal_age, *scan.family.rules[index], source="calibrated")
  fixed = IdCheckPolicy.from_config(config.eval, legal_age)
  asked = {"chosen": policy.asks(estimates, p_under), "challenge": fixed.asks(estimates)}
  details = _details(scans, scan, index, config.data.dir, split, asked, ages, protected_ages,
                     legal_age)
  details["groups"] = groups.breakdown(
      photo_groups, ages, estimates, [(policy.describe(), asked["chosen"]),
                                      (fixed.describe(), asked["challenge"])],
      legal_age, protected_ages, config.eval.min_group_photos)
  path = policy_file.write(_WORKDIR.value, run.step, policy, details)
  _plot(scans, details, fixed)
  _print_summary(policy, details, path, protected_ages)


def _rule_kinds(has_distribution: bool) -> list[str]:
  """The rule families asked for (--rules), checked against the run's head."""
  available = list(calibration.KINDS) if has_distribution else ["age"]
  kinds = _RULES.value or available
  for kind in kinds:
    if kind not in calibration.KINDS:
      raise ConfigError(f"--rules: unknown rule {kind!r} (age, probability, combined)")
    if kind not in available:
      raise ConfigError(f"--rules={kind} needs a run trained with model.head='dex' (its "
                        f"P(age < legal age)); {_WORKDIR.value} has no distribution")
  return kinds


def _choose_split(config) -> str:
  """Points the config at the calibration folder and picks photos the run never trained on."""
  own_folder = os.path.abspath(config.data.dir)
  if _DATA_DIR.value and os.path.abspath(_DATA_DIR.value) != own_folder:
    config.data.dir = _DATA_DIR.value
    config.data.source = "tfds" if pipeline.holds_records(_DATA_DIR.value) else "folder"
    config.data.format = "auto"
  own = os.path.abspath(config.data.dir) == own_folder
  split = _SPLIT.value or ("validation" if own else "all")
  if own and split == "all":
    raise ConfigError(f"--split=all: {config.data.dir} is the folder the run trained on; "
                      "calibrate on --split=validation or test, or another --data_dir")
  return split


def _predictions(run, config, split: str, legal_age: float, mesh):
  """True ages, estimates, (dex head) P(age < legal age) and each group field's values
  (`groups.values_by_field`) of every photo of the split."""
  if _BATCH_SIZE.value:
    config.eval.batch_size = _BATCH_SIZE.value
  sharding.check_batch_size(config.eval.batch_size, mesh, "--batch_size")
  config.data.max_bad_fraction = 1.0  # photos without a face are left out, as in eval.py
  data = pipeline.prepare(config.data, problems_path=None,
                          splits=None if split == "all" else [split])
  split_evaluator = evaluator.Evaluator(predict.make_predict_fn(run.graphdef), mesh,
                                        config.eval.batch_size, under_age=legal_age)
  result = loop.evaluate_split(split_evaluator, run.variables, data, split, config)
  indices = [int(i) for i in data.indices(split)]
  p_under = (None if result.p_under is None
             else np.array([result.p_under[i] for i in indices]))
  photo_groups = [data.store.groups[i] for i in indices] if data.store.groups else []
  return (np.asarray(data.store.ages[indices], np.float64),
          np.array([result.predictions[i] for i in indices]), p_under,
          groups.values_by_field(photo_groups))


def _families(kinds, estimates, p_under, legal_age: float) -> list[calibration.Family]:
  makers = {"age": lambda: calibration.age_family(estimates, legal_age),
            "probability": lambda: calibration.probability_family(estimates, p_under, legal_age),
            "combined": lambda: calibration.combined_family(estimates, p_under, legal_age,
                                                            _COMBINED_RISK.value)}
  return [makers[kind]() for kind in kinds]


def _details(scans, scan, index: int, data_dir: str, split: str, asked: dict, ages,
             protected_ages, legal_age: float) -> dict:
  """What id_policy.json says beside the rule: target, calibration set, guarantee, cost."""
  protected = f"{protected_ages[0]}-{protected_ages[1]}"
  bound = float(scan.bounds[index])
  realized = calibration.realized_rates(asked["chosen"], ages, legal_age, protected_ages)
  return {
      "target": {"max_pass_rate": _MAX_PASS_RATE.value, "confidence": _CONFIDENCE.value,
                 "protected_ages": protected},
      "calibration": {"data_dir": os.path.abspath(data_dir), "split": split,
                      "photos": len(ages), "protected": scan.protected,
                      "adults": int(np.count_nonzero(ages >= legal_age)),
                      "rule_families": [one.family.kind for one in scans],
                      "confidence_per_family": 1 - (1 - _CONFIDENCE.value) / len(scans),
                      "method": "exact one-sided Clopper-Pearson bound, fixed-sequence scan "
                                "strict to lenient per family, Bonferroni across families"},
      "rule_family": scan.family.kind,
      "guarantee": {"upper_bound": bound, "meets_target": bool(bound <= _MAX_PASS_RATE.value),
                    "statement": f"with {100 * _CONFIDENCE.value:g}% confidence at most "
                                 f"{100 * bound:.2f}% of {protected}-year-olds like the "
                                 "calibration photos pass without an ID check"},
      "realized": realized,
      "challenge_rule": calibration.realized_rates(asked["challenge"], ages, legal_age,
                                                   protected_ages),
      "curves": [{"rule": one.family.kind, "adults_asked": one.adults_asked.tolist(),
                  "protected_passed": (one.passed / one.protected).tolist()} for one in scans],
  }


def _plot(scans, details: dict, fixed: IdCheckPolicy) -> None:
  realized, challenge = details["realized"], details["challenge_rule"]
  protected = details["target"]["protected_ages"]
  marks = [(f"chosen ({details['rule_family']} rule): bound "
            f"{100 * details['guarantee']['upper_bound']:.2f}%",
            realized["adults_asked"]["share"], realized["protected_passed"]["share"]),
           (f"fixed Challenge {fixed.challenge_age:g}", challenge["adults_asked"]["share"],
            challenge["protected_passed"]["share"])]
  curves = [(one.family.kind, one.adults_asked, one.passed / one.protected) for one in scans]
  calibrated_on = details["calibration"]
  plots.plot_policy_tradeoff(
      curves, marks, details["target"]["max_pass_rate"], protected,
      run_files.path(_WORKDIR.value, run_files.ID_POLICY_TRADEOFF),
      f"Who the ID check lets through and whom it asks, on {calibrated_on['photos']:,} "
      f"calibration photos\n({calibrated_on['protected']:,} aged {protected}, "
      f"{calibrated_on['adults']:,} adults; {os.path.basename(calibrated_on['data_dir'])}, "
      f"split {calibrated_on['split']})")


def _print_summary(policy: IdCheckPolicy, details: dict, path: str,
                   protected_ages: tuple[int, int]) -> None:
  realized = details["realized"]
  print(f"policy: {policy.describe()}")
  print(f"guarantee: {details['guarantee']['statement']} (target "
        f"{100 * details['target']['max_pass_rate']:g}%)")
  print(f"on the calibration photos: {_share(realized['protected_passed'])} of "
        f"{details['target']['protected_ages']} pass; asked: "
        f"{_share(realized['young_adults_asked'])} of 18-24, "
        f"{_share(realized['adults_25_plus_asked'])} of 25+")
  if details["groups"]:
    print(groups.format_breakdown(details["groups"], protected_ages))
  print(f"wrote {path} and {run_files.ID_POLICY_TRADEOFF}")


def _share(entry: dict) -> str:
  if entry["share"] is None:
    return "-"
  return f"{100 * entry['share']:.2f}% ({entry['count']:,}/{entry['of']:,})"


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
