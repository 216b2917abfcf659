"""Evaluation (JAX + numpy): exact masked evaluation, the report's metrics and plots."""
