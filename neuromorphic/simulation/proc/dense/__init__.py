"""Batched conductance arrays between layers (the host-updated path; the plastic path uses Lava's LearningDense)."""
