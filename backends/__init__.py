"""Backends: the same learning problem settled natively, in ngspice, on Lava, or as the digital reference.

``registry`` is the one list of backends (name -> class, what each needs and supports); ``base`` holds
what they share. Dependencies point one way: circuits <- (netlists | neuromorphic) <- backends <- learning.
"""
from .base import Backend, ResistiveBackend, diode_from_config, mean_output_conductance
from .registry import REGISTRY, BackendError, BackendSpec, get, names, register

__all__ = ["Backend", "BackendError", "BackendSpec", "REGISTRY", "ResistiveBackend", "diode_from_config", "get",
           "mean_output_conductance", "names", "register"]
