"""Benchmarks of ageflax beside its peers (JAX, with the Keras and torch peers)."""
