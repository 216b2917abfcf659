"""Experiment configs: each file's get_config() returns a nested ml_collections.ConfigDict."""

from collections.abc import Iterator

import ml_collections

from configs import resnet50


def with_current_defaults(saved: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The saved config laid over today's defaults, so older runs gain fields added since."""
  config = resnet50.get_config()
  for name, value in _flatten(saved.to_dict()):
    *parents, key = name.split(".")
    section = config
    for part in parents:
      section = section.get(part, {})
    if key in section:  # fields removed since the run was saved are dropped
      section[key] = value
  return config


def _flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _flatten(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value
