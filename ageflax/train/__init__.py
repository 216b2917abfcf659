"""Training (JAX): state and steps, optimizers, the loop, checkpoints, preemption, summaries."""
