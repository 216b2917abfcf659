"""The data overview: the first look at a face-age folder (Python + Pillow)."""
