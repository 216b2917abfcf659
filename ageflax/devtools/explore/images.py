"""Reading each photo of a data folder once: its header, a full decode and a content hash."""

import concurrent.futures
import dataclasses
import hashlib
import io
import os
from collections.abc import Callable, Sequence

from PIL import Image


@dataclasses.dataclass(frozen=True)
class ImageFacts:
  """What one image file holds, read once: header fields, a decode verdict and a hash."""

  num_bytes: int = 0
  digest: str = ""
  format: str = ""
  width: int = 0
  height: int = 0
  mode: str = ""
  channels: int = 0
  error: str | None = None  # Why the file cannot be read or decoded; None if it can.


def inspect_image(path: str | os.PathLike) -> ImageFacts:
  """Reads one file, hashes its bytes and decodes it fully with Pillow."""
  try:
    with open(path, "rb") as f:
      content = f.read()
  except OSError as e:
    return ImageFacts(error=f"cannot read file ({e.strerror})")
  digest = hashlib.sha256(content).hexdigest()
  try:
    with Image.open(io.BytesIO(content)) as image:
      header = dict(format=image.format or "", width=image.width, height=image.height,
                    mode=image.mode, channels=len(image.getbands()))
      image.load()  # the header alone says nothing about the compressed data behind it
  except Exception as e:  # Pillow raises many types; any decoder failure makes it unreadable.
    reason = " ".join(str(e).split())[:200] or type(e).__name__
    return ImageFacts(len(content), digest, error=f"cannot decode image ({reason})")
  return ImageFacts(len(content), digest, **header)


def inspect_images(paths: Sequence[str], workers: int = 2,
                   on_progress: Callable[[int], None] | None = None) -> list[ImageFacts]:
  """`inspect_image` over many files on `workers` threads (Pillow and hashlib drop the GIL)."""
  facts = []
  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    for facts_of_one in pool.map(inspect_image, paths):
      facts.append(facts_of_one)
      if on_progress:
        on_progress(len(facts))
  return facts
