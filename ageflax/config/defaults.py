"""The default config: every field with its one-line meaning (the study's setup, dex head).

Experiment files in `configs/` start from `get_config()` and override fields; the schema
(`ageflax.config.schema`) checks every field. The study's head was Dense(1, relu) with MSE:
`--config.model.head=relu --config.train.loss=l2 --config.train.label_sigma=0`; on the real
faces the dex head with label smoothing beat it (README, "Which head"), so it is the default.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def get_config() -> ml_collections.ConfigDict:
  """Every field at its default; experiment files override fields."""
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds model init, the data order and augmentation.

  config.data = data = ml_collections.ConfigDict()
  data.dir = ""  # Data folder (see data.format), or the records folder when source='tfds'.
  data.format = "auto"  # labels_csv, appa_real, utkface, csv, or auto (told from the files).
  data.source = "folder"  # 'folder': read data.dir; 'tfds': scripts/prepare_tfds.py records.
  data.image_size = 224  # Images are resized to image_size x image_size.
  data.validation_fraction = 0.25  # Share of photos held out for validation (study: 25%).
  data.test_fraction = 0.0  # Share held out as a test set, never used in training.
  data.split_seed = 0  # Seeds the split; independent of `seed` so runs share a split.
  # 'file_name', or 'content': byte-identical photos share a split (no copy of a training
  # photo is scored as held out); reads every file once more to hash it.
  data.split_by = "file_name"
  data.max_age = 120.0  # Ages above this are rejected as absurd.
  data.max_image_megapixels = 40.0  # Larger images (by their header) are rejected unread.
  data.extra_image_root = ""  # A folder outside data.dir that rows may name photos in ('': none).
  data.bad_rows = "skip"  # 'skip': set bad rows aside, listed at start; 'error': abort.
  data.max_bad_fraction = 0.01  # Abort even with 'skip' past this share of bad rows/photos read.
  data.verify_images = False  # Uncached folder: decode every photo up front, not only headers.
  data.cache = "auto"  # Folder in memory: 'memory', 'none' (read files per batch), 'auto' (if fits).
  data.cache_max_gb = 8.0  # Memory budget for the 'auto' cache.
  data.num_threads = 0  # tf.data threads, photos decoded at once when streamed; 0: one per core.
  data.prefetch_batches = 2  # Batches prepared ahead of the train step.
  data.group_columns = ""  # Labels CSV columns to report errors per group by, e.g. 'gender,site'.
  data.group_from_file_names = ""  # 'utkface': gender and race from AGE_GENDER_RACE_* names.

  data.csv = csv = ml_collections.ConfigDict()  # Used with format='csv'.
  csv.path = "labels.csv"  # The labels CSV, relative to data.dir (or absolute).
  csv.image_root = ""  # Folder the image paths are relative to, in data.dir ('': the CSV's).
  csv.file_column = "file_name"  # Column with the image paths.
  csv.age_column = "real_age"  # Column with the ages in years.

  data.appa_real = appa_real = ml_collections.ConfigDict()  # Used with format='appa_real'.
  appa_real.target = "real_age"  # real_age, or apparent_age (mean of the raters' guesses).
  appa_real.face_crops = True  # Train on the release's NAME_face.jpg crops where present.

  data.face_framing = face_framing = ml_collections.ConfigDict()
  # 'align': find the face, warp its eyes, nose and mouth corners onto the canonical frame
  # (training, evaluation, prediction alike); 'none': photos are used as they are framed.
  face_framing.mode = "none"
  face_framing.min_face_fraction = 0.1  # Smaller faces are not used (share of the shorter side).
  face_framing.min_score = 0.9  # The detector's confidence below which a face is not used.

  data.augment = augment = ml_collections.ConfigDict()
  augment.flip = True  # Random horizontal flip.
  augment.rotation_degrees = 15.0  # Uniform rotation in [-r, r] degrees.
  augment.shift_fraction = 0.1  # Uniform shift in [-s, s] of the width/height.
  augment.zoom_fraction = 0.1  # Uniform zoom factor in [1 - z, 1 + z].
  augment.brightness = 0.0  # Add uniform [-b, b] x 255 to every pixel (0: off).
  augment.contrast = 0.0  # Scale contrast by a uniform factor in [1 - c, 1 + c] (0: off).
  # Till-like camera shifts (README, "Robust to till photos"); all off by default.
  augment.colour_cast = 0.0  # Each RGB channel's gain uniform in [1 - c, 1 + c] (0: off).
  augment.gamma = 0.0  # Pixels x/255 raised to (1 + g)^u, u uniform in [-1, 1] (0: off).
  augment.blur_sigma_max = 0.0  # Gaussian blur, sigma uniform in [0, s] pixels (0: off; host).
  augment.low_res_probability = 0.0  # Share resized to low_res_side and back (0: off; host).
  augment.low_res_side = 32  # The side, in pixels, those photos are resized down to.
  augment.jpeg_quality_min = 0  # Recompress as JPEG at a quality in [q, 95] (0: off; host).
  augment.fill_mode = "reflect"  # Pixels warped in from outside: reflect, nearest, wrap, constant.
  augment.placement = "host"  # Where: 'host' (tf.data) or 'device' (JAX, in the train step).

  config.model = model = ml_collections.ConfigDict()
  model.name = "resnet50"  # resnet18|34|50|101|152, or resnet18_small_input (no max pool).
  model.head = "dex"  # 'dex': softmax over ages (won on real faces); 'relu' (the study); 'affine'.
  model.dex_max_age = 100  # The dex head's bins: one per year of age 0..dex_max_age.
  model.dex_readout = "mean"  # The dex head's estimate: its distribution's mean or median.
  model.input_normalization = "imagenet"  # imagenet (mean/std), caffe (BGR - mean), unit, per_image.
  model.dtype = "float32"  # Compute dtype: float32, or bfloat16 on GPU/TPU.
  model.conv_impl = "xla"  # xla, matmul (patches x kernel) or auto (matmul on small maps).
  model.bn_momentum = 0.9  # BatchNorm running-average momentum.
  model.bn_epsilon = 1e-5  # BatchNorm epsilon.
  model.zero_init_residual = True  # Start each residual block as the identity.
  model.block_style = "v1.5"  # v1.5 (torchvision's) or keras_v1 (conv biases, stride on 1x1).
  model.init_from = ""  # Backbone written by scripts/convert_weights.py; '': random init.

  config.optim = optim = ml_collections.ConfigDict()
  optim.name = "adam"  # adam or adamw.
  optim.learning_rate = 1e-4  # Peak learning rate.
  optim.schedule = "constant"  # After warm-up: 'constant' or 'cosine' decay.
  optim.final_learning_rate_fraction = 0.0  # Cosine ends at this fraction of the peak.
  optim.warmup_steps = placeholder(int)  # Linear warm-up length in steps; wins when set.
  optim.warmup_epochs = 0.0  # Linear warm-up length in epochs.
  optim.b1 = 0.9  # Adam beta1.
  optim.b2 = 0.999  # Adam beta2.
  optim.eps = 1e-7  # Adam epsilon (Keras' default, as in the study).
  optim.weight_decay = 0.0  # AdamW decoupled weight decay on kernels.
  optim.grad_clip_norm = 0.0  # Clip gradients to this global norm (0: off).
  optim.backbone_learning_rate_multiplier = 1.0  # Backbone's learning rate: this x the head's.
  optim.freeze_backbone_steps = 0  # The backbone gets no updates in the first this many steps.

  config.train = train = ml_collections.ConfigDict()
  train.batch_size = 32  # Global batch size, split over all devices of all hosts.
  train.num_epochs = 5.0  # Training length in epochs.
  train.num_steps = placeholder(int)  # Training length in steps; wins when set.
  train.loss = "dex"  # dex for the dex head; l2 (mean squared error, the study's), l1, huber.
  train.label_sigma = 2.0  # dex loss: Gaussian label smoothing width in years (0: one-hot).
  train.huber_delta = 5.0  # Huber loss: quadratic within this many years.
  train.age_balance = 0.0  # Weight each photo by its age's smoothed density ^ -this (0: off).
  train.ema_decay = 0.0  # Validate, keep and export a moving average of the weights (0: off).
  train.mixup_alpha = 0.0  # Blend photos and their losses in pairs, weights ~ Beta(a, a) (0: off).
  train.log_every_steps = 50  # Progress line and summaries every this many steps.

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 64  # Global evaluation batch size.
  config.eval.every_epochs = 1.0  # Validate every this many epochs (and at the end).
  config.eval.legal_age = 18.0  # Alcohol check: the youngest age that may buy alcohol.
  config.eval.challenge_age = 25.0  # Alcohol check: estimated younger than this is asked for ID.
  config.eval.min_group_photos = 30  # A group with fewer photos (or protected ones) is not judged.

  config.till = till = ml_collections.ConfigDict()  # When a till estimate is not trusted.
  # Each limit below marks a photo whose estimate is not trusted: it gets an ID check.
  till.min_photo_side = 48  # Photos whose shorter side has fewer pixels.
  till.min_face_side = 40  # Detected faces whose shorter side has fewer pixels.
  till.min_sharpness = 2.5  # Blur: the variance of the Laplacian of the model's grey input.
  till.max_noise_ratio = 2.0  # Noise, not a face: Laplacian std over the std of 8x8 means.
  till.max_spread = 12.0  # dex head: the model's own std of the age, in years, above it.

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 1000  # Also save mid-epoch every this many steps.
  config.checkpoint.keep_latest = 2  # Most recent checkpoints kept for resuming.
  config.checkpoint.keep_best = 1  # Best checkpoints by validation MAE kept.
  return config
