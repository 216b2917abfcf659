"""Data: layouts and label rows (Python), TF decoding, tf.data and TFDS, the augmentation (TF, JAX)."""
