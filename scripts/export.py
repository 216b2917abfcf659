"""Exports a trained run as a TensorFlow SavedModel (jax2tf) for TF Serving or any TF runtime.

  python scripts/export.py --workdir=runs/r50 --out=exported/ [--step=N] [--flip_tta]

Signatures: `serving_default` / `predict_images` (float32 RGB images [N, S, S, 3] in
[0, 255]) and `predict_image_bytes` (the encoded files [N]); both return `age`, and for a
dex-head run `age_spread` and `p_under_legal_age`. See ageflax/till/savedmodel.py.
"""

from ageflax.cli import export as export_cli

if __name__ == "__main__":
  export_cli.run()
