"""The till: a run restored as a predictor, photos, the ID-check policy, rows and export."""
