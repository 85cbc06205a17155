"""Layers of free nodes: the host-trained batched neurons and their plastic (on-chip learning) variant."""
