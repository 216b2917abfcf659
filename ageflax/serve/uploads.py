"""An uploaded photo's bytes turned into upright RGB pixels, or the one-line reason they cannot.

Pillow decodes (JPEG or PNG only) and turns the photo upright by its EXIF orientation, as
training does. The pixel count the header declares is checked before any pixel is decoded,
so a few bytes declaring a giant picture cost nothing. The model's input, when a photo is
not framed on a face, is the whole photo resized the way training resizes it
(`resize_like_training`).
"""

import io

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin

from ageflax.data import image_files

# Built directly rather than by Image.open, whose own decompression-bomb check (Pillow's
# global limit) would refuse a giant header before this module can name its size.
_READERS = {"jpeg": JpegImagePlugin.JpegImageFile, "png": PngImagePlugin.PngImageFile}


class UploadError(Exception):
  """A photo the service cannot use: the HTTP status to answer and the reason, in one line."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


def decode_photo(body: bytes, max_megapixels: float) -> np.ndarray:
  """The upright uint8 RGB pixels [H, W, 3] of a JPEG or PNG file's bytes.

  Raises:
    UploadError: the body is empty, not a JPEG or PNG, declares more than `max_megapixels`,
      or is truncated or corrupt.
  """
  if not body:
    raise UploadError(400, "empty body: send a JPEG or PNG photo")
  image_format = image_files.sniff_format(body[:16])
  if image_format not in _READERS:
    kind = f"a {image_format.upper()} image" if image_format else "not an image"
    raise UploadError(422, f"{kind}: send a JPEG or PNG photo (unrecognised file signature)")
  try:
    with _READERS[image_format](io.BytesIO(body)) as opened:
      _check_pixel_count(opened.size, max_megapixels)
      opened.load()
      return np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
  except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as e:
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise UploadError(422, f"truncated or corrupt {image_format.upper()} ({reason})") from None


def _check_pixel_count(size: tuple[int, int], max_megapixels: float) -> None:
  width, height = size
  if width * height > max_megapixels * 1e6:
    raise UploadError(422, f"the image is {width}x{height}, {width * height / 1e6:.0f} "
                      f"megapixels, more than till.max_image_megapixels={max_megapixels:g}")


def resize_like_training(image: np.ndarray, image_size: int) -> np.ndarray:
  """`image` uint8 [H, W, 3] resized to [S, S, 3] as training's `tf.image.resize` (bilinear,
  antialiased) does: the same triangle filter, widened when shrinking, in float32, rounded
  half to even. Pillow's float mode ("F") keeps each pass unrounded, as TensorFlow does."""
  channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32))
                         .resize((image_size, image_size), Image.Resampling.BILINEAR))
              for c in range(image.shape[-1])]
  return np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)
