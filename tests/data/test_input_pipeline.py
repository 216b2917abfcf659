"""Decoding, augmentation, the training stream and exact evaluation batches."""

import io

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from conftest import write_face_folder, write_labels
from PIL import Image, ImageOps

from ageflax.core.errors import DataError
from ageflax.data import image_files, image_store, pipeline, record_store, tf_augment, tf_images
from ageflax.data.augment_spec import AugmentSpec
from configs import tiny


def _data_config(directory, **overrides) -> ml_collections.ConfigDict:
  config = tiny.get_config().data
  config.dir = str(directory)
  config.update(overrides)
  return config


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=fmt, **kwargs)
  return buffer.getvalue()


@pytest.mark.parametrize("mode, fmt", [("L", "JPEG"), ("CMYK", "JPEG"), ("RGBA", "PNG"),
                                       ("RGB", "PNG"), ("P", "PNG"), ("LA", "PNG"),
                                       ("RGB", "GIF"), ("RGB", "BMP")])
def test_any_channel_count_decodes_to_rgb(mode, fmt):
  image = Image.new(mode, (7, 5))
  decoded = tf_images.decode_image(tf.constant(_encode(image, fmt)))
  assert decoded.shape == (5, 7, 3) and decoded.dtype == tf.uint8


def test_a_one_pixel_image_resizes():
  one_pixel = tf_images.decode_image(tf.constant(_encode(Image.new("RGB", (1, 1), "red"),
                                                             "PNG")))
  resized = tf_images.resize(one_pixel, 16).numpy()
  assert resized.shape == (16, 16, 3) and np.all(resized[..., 0] == 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
  pixels = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), np.uint8)
  image = Image.fromarray(pixels)
  exif = Image.Exif()
  exif[0x0112] = orientation
  path = tmp_path / "photo.png"
  # PNG keeps the pixels exact; the orientation is read from a JPEG carrying the same EXIF.
  image.save(path)
  image.save(tmp_path / "photo.jpg", exif=exif.tobytes())
  assert image_files.exif_orientation(tmp_path / "photo.jpg") == orientation
  upright = tf_images.apply_exif_orientation(
      tf_images.decode_image(tf.io.read_file(str(path))), tf.constant(orientation))
  expected = np.asarray(ImageOps.exif_transpose(_with_orientation(image, orientation)))
  np.testing.assert_array_equal(upright.numpy(), expected)


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
  tagged = image.copy()
  tagged.getexif()[0x0112] = orientation
  return tagged


def test_resize_gives_square_uint8():
  image = tf.constant(np.full((30, 50, 3), 200, np.uint8))
  resized = tf_images.resize(image, 16)
  assert resized.shape == (16, 16, 3) and resized.dtype == tf.uint8
  assert np.all(resized.numpy() == 200)


def _augment_config(**values) -> AugmentSpec:
  config = tiny.get_config().data.augment
  config.update(dict(flip=False, rotation_degrees=0.0, shift_fraction=0.0, zoom_fraction=0.0,
                     brightness=0.0, contrast=0.0))
  config.update(values)
  return AugmentSpec.from_config(config)


def _random_images(count=6, size=12) -> tf.Tensor:
  return tf.constant(np.random.default_rng(0).integers(0, 256, (count, size, size, 3), np.uint8))


def test_no_augmentation_is_the_identity():
  images = _random_images()
  out = tf_augment.augment_batch(images, tf.constant([0, 1]), 6, 0, _augment_config())
  np.testing.assert_array_equal(out.numpy(), images.numpy())


def test_flip_alone_mirrors_or_keeps_each_image_exactly():
  images = _random_images(count=32)
  out = tf_augment.augment_batch(images, tf.constant([0, 1]), 32, 0,
                                     _augment_config(flip=True)).numpy()
  mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images.numpy(), strict=True)]
  kept = [np.array_equal(o, i) for o, i in zip(out, images.numpy(), strict=True)]
  assert all(m or k for m, k in zip(mirrored, kept, strict=True))
  assert 4 < sum(mirrored) < 28


def test_augmentation_stays_in_range_and_is_a_function_of_seed():
  config = _augment_config(flip=True, rotation_degrees=20.0, shift_fraction=0.2,
                           zoom_fraction=0.2, brightness=0.2, contrast=0.3)
  images = _random_images()
  first = tf_augment.augment_batch(images, tf.constant([5, 7]), 6, 0, config).numpy()
  again = tf_augment.augment_batch(images, tf.constant([5, 7]), 6, 0, config).numpy()
  other = tf_augment.augment_batch(images, tf.constant([5, 8]), 6, 0, config).numpy()
  assert first.dtype == np.uint8 and first.shape == images.shape
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_each_row_is_augmented_the_same_whatever_host_feeds_it():
  config = _augment_config(flip=True, rotation_degrees=20.0, shift_fraction=0.1)
  images = _random_images(count=8)
  whole = tf_augment.augment_batch(images, tf.constant([1, 2]), 8, 0, config).numpy()
  second_half = tf_augment.augment_batch(images[4:], tf.constant([1, 2]), 8, 4, config)
  np.testing.assert_array_equal(second_half.numpy(), whole[4:])


def test_augmentation_runs_inside_tf_data():
  config = _augment_config(flip=True, rotation_degrees=10.0)
  dataset = tf.data.Dataset.from_tensors(_random_images()).map(
      lambda x: tf_augment.augment_batch(x, tf.constant([0, 0]), 6, 0, config))
  eager = tf_augment.augment_batch(_random_images(), tf.constant([0, 0]), 6, 0, config)
  np.testing.assert_array_equal(next(iter(dataset)).numpy(), eager.numpy())


@pytest.fixture
def prepared(tmp_path):
  folder = write_face_folder(tmp_path / "f", 45)
  return pipeline.prepare(_data_config(folder, validation_fraction=0.2), None)


def _train_batches(prepared, start_step, num_steps, rows=None, batch=8, seed=0):
  rows = rows or pipeline.HostRows(0, batch)
  dataset = pipeline.train_dataset(
      prepared.store, prepared.splits["train"], batch, rows, seed, start_step, num_steps,
      _data_config("unused"))
  return list(dataset.as_numpy_iterator())


def test_train_batches_have_the_promised_shapes(prepared):
  batches = _train_batches(prepared, 0, 5)
  assert len(batches) == 5
  assert batches[0]["image"].shape == (8, 32, 32, 3) and batches[0]["image"].dtype == np.uint8
  assert batches[0]["age"].shape == (8,) and batches[0]["age"].dtype == np.float32


def test_an_epoch_visits_distinct_training_photos_only(prepared):
  per_epoch = pipeline.steps_per_epoch(len(prepared.splits["train"]), 8)
  ages_seen = np.concatenate([b["age"] for b in _train_batches(prepared, 0, per_epoch)])
  assert per_epoch == 36 // 8 and len(ages_seen) == per_epoch * 8
  order = pipeline.epoch_order(36, seed=0, epoch=0)[:per_epoch * 8]
  np.testing.assert_array_equal(ages_seen, prepared.ages("train")[order])


def test_resuming_at_any_step_gives_the_same_stream(prepared):
  full = _train_batches(prepared, 0, 11)
  resumed = _train_batches(prepared, 6, 11)
  for a, b in zip(full[6:], resumed, strict=True):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["age"], b["age"])
  other_seed = _train_batches(prepared, 0, 2, seed=1)
  assert not np.array_equal(other_seed[0]["age"], full[0]["age"])


def test_with_device_augmentation_the_stream_carries_the_stored_pixels(prepared):
  config = _data_config("unused")
  config.augment.placement = "device"
  batches = list(pipeline.train_dataset(
      prepared.store, prepared.splits["train"], 8, pipeline.HostRows(0, 8), 0, 0, 2,
      config).as_numpy_iterator())
  order = prepared.splits["train"][pipeline.epoch_order(36, seed=0, epoch=0)]
  for step, batch in enumerate(batches):
    stored = prepared.store.gather(tf.constant(order[step * 8:(step + 1) * 8])).numpy()
    np.testing.assert_array_equal(batch["image"], stored)
  host_augmented = _train_batches(prepared, 0, 1)[0]["image"]
  assert not np.array_equal(host_augmented, batches[0]["image"])


def test_hosts_feed_disjoint_rows_of_the_same_global_batch(prepared):
  whole = _train_batches(prepared, 0, 3)
  first = _train_batches(prepared, 0, 3, rows=pipeline.HostRows(0, 4))
  second = _train_batches(prepared, 0, 3, rows=pipeline.HostRows(4, 4))
  for w, a, b in zip(whole, first, second, strict=True):
    np.testing.assert_array_equal(np.concatenate([a["image"], b["image"]]), w["image"])


def test_evaluation_counts_every_photo_once_with_a_padded_last_batch(prepared):
  indices = prepared.indices("validation")
  assert len(indices) == 9
  halves = [pipeline.HostRows(0, 2), pipeline.HostRows(2, 2)]
  seen = []
  for rows in halves:
    batches = list(pipeline.eval_dataset(prepared.store, indices, 4, rows,
                                               _data_config("unused")).as_numpy_iterator())
    assert len(batches) == 3  # ceil(9 / 4), the same on every host
    for batch in batches:
      seen += [int(i) for i, m in zip(batch["index"], batch["mask"], strict=True) if m]
      assert np.all((batch["index"] >= 0) == (batch["mask"] == 1))
  assert sorted(seen) == sorted(indices.tolist())


def test_a_folder_streamed_from_its_files_gives_the_cached_batches_bit_for_bit(tmp_path):
  folder = write_face_folder(tmp_path / "f", 20)
  cached = pipeline.prepare(_data_config(folder, cache="memory"), None)
  streamed = pipeline.prepare(_data_config(folder, cache="none"), None)
  assert isinstance(cached.store, image_store.ImageStore)
  assert isinstance(streamed.store, record_store.RecordStore)  # no pixels held
  config = _data_config("unused")
  config.augment.update(brightness=0.2, contrast=0.3)  # flip, rotate, shift, zoom and these
  runs = [list(pipeline.as_numpy(data.train_dataset(
      4, pipeline.HostRows(0, 4), seed=3, start_step=0, num_steps=6, config=config), "f"))
      + list(pipeline.as_numpy(pipeline.eval_dataset(
          data.store, data.indices("validation"), 4, pipeline.HostRows(0, 4), config), "f"))
      for data in (cached, streamed)]
  assert len(runs[0]) == len(runs[1]) == 6 + 2  # two epochs of 15 photos, 5 to evaluate
  for first, second in zip(*runs, strict=True):
    real = first.get("mask", np.ones(4)) == 1  # padding rows of evaluation count for nothing
    for name in first:
      np.testing.assert_array_equal(first[name][real], second[name][real])


def test_a_streamed_photo_that_fails_to_decode_is_named_and_replaced(tmp_path):
  folder = write_face_folder(tmp_path / "f", 20)
  _break_huffman_table(folder / "final_files" / "00003.jpg")
  config = _data_config(folder, cache="none", validation_fraction=0.0, max_bad_fraction=0.1)
  streamed = pipeline.prepare(config, str(tmp_path / "s"))
  assert streamed.problems == ()  # up front, headers only: its header is sound
  images, ages = streamed.store.read(np.array([3]))
  np.testing.assert_array_equal(images[0], streamed.store.read(np.array([4]))[0][0])
  assert ages[0] == streamed.store.ages[4]
  assert "labels.csv,5,00003.jpg,cannot decode image" in (tmp_path / "s").read_text()
  config.verify_images = True  # decoded up front too: named before training
  assert [p.file_name for p in pipeline.prepare(config, None).problems] == ["00003.jpg"]


def _break_huffman_table(path) -> None:
  """Signature, end marker and header intact, but a Huffman table counts 4080 codes."""
  jpeg = bytearray(path.read_bytes())
  table = jpeg.index(b"\xff\xc4")
  jpeg[table + 5:table + 21] = b"\xff" * 16
  path.write_bytes(bytes(jpeg))


def test_undecodable_images_are_set_aside_by_name(tmp_path):
  folder = write_face_folder(tmp_path / "f", 30)
  _break_huffman_table(folder / "final_files" / "00003.jpg")
  data = pipeline.prepare(_data_config(folder, max_bad_fraction=0.1), str(tmp_path / "s"))
  assert [p.file_name for p in data.problems] == ["00003.jpg"]
  assert "cannot decode image" in data.problems[0].reason
  assert len(data.store) == 29
  assert "00003.jpg" in (tmp_path / "s").read_text()


def test_a_shifted_split_is_the_clean_one_with_only_its_photos_shifted(tmp_path):
  folder = write_face_folder(tmp_path / "f", 30)
  _break_huffman_table(folder / "final_files" / "00003.jpg")
  config = _data_config(folder, max_bad_fraction=0.1, validation_fraction=0.2,
                        test_fraction=0.2)
  clean = pipeline.prepare(config, None)
  shifted = pipeline.shifted_copy(clean, "test", config, lambda image, index: 255 - image)
  clean_test = [clean.store.file_names[i] for i in clean.indices("test")]
  assert [shifted.store.file_names[i] for i in shifted.indices("test")] == clean_test
  assert len(shifted.store) == len(clean_test) == 6
  assert len(shifted.indices("train")) == len(shifted.indices("validation")) == 0
  assert shifted.problems == ()
  inverted = 255 - _cached(clean, clean.indices("test")).astype(int)
  assert np.abs(_cached(shifted, shifted.indices("test")) - inverted).mean() < 2


def test_prepared_records_give_no_shifted_copy(tmp_path):
  records_data = pipeline.PreparedData(store=None, splits={}, problems=())
  with pytest.raises(DataError, match=r"records hold photos already resized"):
    pipeline.shifted_copy(records_data, "test", _data_config(tmp_path),
                          lambda image, index: image)


def _cached(data: pipeline.PreparedData, indices: np.ndarray) -> np.ndarray:
  return data.store.gather(tf.constant(indices)).numpy()


def test_cache_auto_respects_the_memory_budget():
  config = _data_config("unused", cache="auto", cache_max_gb=1.0)
  assert image_store.cache_fits(1000, 224, config)
  assert not image_store.cache_fits(10_000_000, 224, config)


def test_missing_data_dir_setting_is_named():
  with pytest.raises(Exception, match=r"set --config.data.dir"):
    pipeline.prepare(_data_config(""), None)


def test_skipped_rows_are_logged_and_written(tmp_path):
  folder = write_face_folder(tmp_path / "f", 30)
  write_labels(folder, [(f"{i:05d}.jpg", 20) for i in range(30)] + [("nope.jpg", 20)])
  data = pipeline.prepare(_data_config(folder, max_bad_fraction=0.1), str(tmp_path / "s"))
  assert data.summary()["num_skipped"] == 1
  assert "nope.jpg,file not found" in (tmp_path / "s").read_text()


def test_exif_rotated_photos_arrive_upright(tmp_path):
  folder = write_face_folder(tmp_path / "f", 10)
  pixels = np.zeros((40, 40, 3), np.uint8)
  pixels[:, 20:] = 255  # dark left half, bright right half as stored
  exif = Image.Exif()
  exif[0x0112] = 3  # stored upside down: upright, the bright half is on the left
  Image.fromarray(pixels).save(folder / "final_files" / "00004.jpg", exif=exif.tobytes())
  data = pipeline.prepare(_data_config(folder, validation_fraction=0.0), None)
  position = data.store.file_names.index("00004.jpg")
  image = data.store.gather(tf.constant([position])).numpy()[0]
  assert image[:, :12].mean() > 200 and image[:, -12:].mean() < 50
