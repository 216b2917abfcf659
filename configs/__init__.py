"""Experiment configs: each file's get_config() returns a nested ml_collections.ConfigDict."""
