"""Measures ageflax stage by stage, beside Keras and PyTorch, in one run.

  python scripts/benchmark.py --config=configs/resnet50.py --data_dir=DIR --output=bench.json

Prints a table (median and min-max of several timed repetitions after warm-up) of the input
pipeline, the train step, end-to-end training and utilisation, then lines such as
`ratio train_step ageflax/keras: 1.23`, and writes the same as JSON. Without --data_dir (or
--config.data.dir) the data are synthetic faces written to a temporary folder. The defaults
(ResNet50 at 128x128, batch 32) take a few minutes on 2 CPU cores. The torch peer needs
`pip install -r requirements-peers.txt`; without it it is skipped with a note.
"""

from ageflax.cli import benchmark as benchmark_cli

if __name__ == "__main__":
  benchmark_cli.run()
