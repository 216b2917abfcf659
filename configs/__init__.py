"""Experiment files: each get_config() overrides the defaults of `ageflax.config.defaults`."""
