"""Clamped voltage sources: inputs and bias rails."""
