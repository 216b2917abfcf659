"""Compares the convolution algorithms of `model.conv_impl` on this machine.

  python scripts/benchmark_conv.py --model=resnet18 --image_size=64 --batch_size=64

Prints, for each algorithm, the jitted train step's images/s on a fixed device-resident
batch (median of several timed rounds after compilation, with the spread), and the ratio
to 'xla'. The train step is the real one (`steps.train_step`), so the figures are what
training gets, minus the input pipeline.
"""

from ageflax.cli import benchmark_conv as benchmark_conv_cli

if __name__ == "__main__":
  benchmark_conv_cli.run()
