"""Experiments over the learning layer: one module per CLI command (compare, gradcheck, onchip, sweep,
physics, nonideal, export, demo) and the thin ``cli`` that dispatches to them."""
