"""ageflax: learns a person's age from a face photo with JAX/Flax."""
