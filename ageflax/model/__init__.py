"""Models (JAX/Flax): the architecture table, the ResNets, the dex head, prediction, weights."""
