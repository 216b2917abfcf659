"""Measures ageflax stage by stage, beside Keras and PyTorch, in one run.

  python scripts/benchmark.py --config=configs/resnet50.py --data_dir=DIR --output=bench.json

Prints a table (median and min-max of several timed repetitions after warm-up) of the input
pipeline, the train step, end-to-end training and utilisation, then lines such as
`ratio train_step ageflax/keras: 1.23`, and writes the same as JSON. Without --data_dir (or
--config.data.dir) the data are synthetic faces written to a temporary folder. The defaults
(ResNet50 at 128x128, batch 32) take a few minutes on 2 CPU cores. The torch peer needs
`pip install -r requirements-peers.txt`; without it it is skipped with a note.

  python scripts/benchmark.py --settings=study,cpu45 --config.model.conv_impl=matmul

measures named settings in turn (`benchmarks.SETTINGS`: the study's ResNet50, 128 px, batch
32 and the 45-minute recipe's ResNet18, 64 px, batch 64), each with its own table and
ratio lines; the other fields (dtype, conv_impl) are the config's. The JSON then holds one
report per setting under "reports".
"""


from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.devtools.bench import benchmarks, report

_CONFIG = config_flags.DEFINE_config_file(
    "config", common.experiment_file("resnet50.py"),
    "Training config file.", lock_config=True)
_DATA_DIR = shared_flags.define_data_dir("Data folder (labels.csv + final_files/); default: the "
                                         "config's data.dir, else synthetic faces.", default="")
_OUTPUT = shared_flags.define_output_file("Where to write the JSON report (default: none).")
_SECTIONS = flags.DEFINE_list("sections", list(benchmarks.SECTIONS), "What to measure.")
_PEERS = flags.DEFINE_list("peers", list(benchmarks.PEERS), "Peers of the 'peers' section.")
_MODEL = flags.DEFINE_string("model", "", "model.name; default: the config's.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 128,
                                   "data.image_size (128: the issue's reference); 0: the config's.")
_BATCH_SIZE = shared_flags.define_batch_size("train.batch_size; 0: the config's.", default=0)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions of every figure.")
_STEPS = flags.DEFINE_integer("steps", 2, "Train steps per timed repetition.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 1, "Untimed steps before timing.")
_PIPELINE_BATCHES = flags.DEFINE_integer("pipeline_batches", 20,
                                         "Batches per timed repetition of the input pipeline.")
_SYNTHETIC_FACES = flags.DEFINE_integer("synthetic_faces", 512,
                                        "Synthetic faces written when no data folder is given.")
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "Side of the peak-rate matmul.")
_SETTINGS = flags.DEFINE_list(
    "settings", [], f"Named settings measured in turn, of {tuple(benchmarks.SETTINGS)}; they "
    "replace --model, --image_size and --batch_size. Empty: one run from those flags.")
_TORCH_COMPILE = flags.DEFINE_bool("torch_compile", False,
                                   "Run the torch peer's model through torch.compile.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  options = benchmarks.Options(
      sections=tuple(_SECTIONS.value), peers=tuple(_PEERS.value), repeats=_REPEATS.value,
      steps=_STEPS.value, warmup_steps=_WARMUP_STEPS.value,
      pipeline_batches=_PIPELINE_BATCHES.value, synthetic_faces=_SYNTHETIC_FACES.value,
      matmul_size=_MATMUL_SIZE.value, torch_compile=_TORCH_COMPILE.value)
  benchmarks.check_options(options)
  if _SETTINGS.value:
    configs = benchmarks.configure_settings(_CONFIG.value, _SETTINGS.value, _DATA_DIR.value)
  else:
    configs = {"": benchmarks.configure(
        _CONFIG.value, model=_MODEL.value, image_size=_IMAGE_SIZE.value,
        batch_size=_BATCH_SIZE.value, data_dir=_DATA_DIR.value)}
  reports = {name: benchmarks.run(config, options, name) for name, config in configs.items()}
  print("\n\n".join(measured.text() for measured in reports.values()))
  if _OUTPUT.value:
    report.write_reports(_OUTPUT.value, reports)
    print(f"wrote {_OUTPUT.value}")


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
