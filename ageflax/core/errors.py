"""User-facing errors: each carries one line that names the file, row or field at fault."""


class AgeflaxError(Exception):
  """A problem the user can fix; entry points print its message as one line and exit 1."""


class DataError(AgeflaxError):
  """The data folder, labels file or an image is missing, malformed or unusable."""


class ConfigError(AgeflaxError):
  """A config field has a value that cannot work (named in the message)."""


class TrainingError(AgeflaxError):
  """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


class CheckpointError(AgeflaxError):
  """No usable checkpoint where one is needed."""
