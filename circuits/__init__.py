"""What the network is: topology, devices, energy, and the native batched equilibrium solvers."""
from . import threads as _threads

_threads.limit_blas_spin()  # first, before numpy loads its OpenBLAS below (``threads.limit_blas_spin``)

from .devices import (AMPLIFIER_MODELS, DIODE_MODELS, Amplifier, OpAmp, amplifier_model, Conductance, DiodeClamp, DiodeModel, IdealDiode, PiecewiseLinearDiode,
                      ShockleyDiode, diode_model, thermal_voltage)
from .energy import cost, energy, kcl_residual, nudge_current, readout
from .equilibrium import Equilibrium
from .errors import ConvergenceError, InputError, NetworkError
from .network import GraphNetwork, LayeredNetwork, layered
from .solver import solve
from .transistors import TabulatedAmplifier, TwoStageOpAmp

__all__ = [
    "AMPLIFIER_MODELS", "OpAmp", "amplifier_model", "DIODE_MODELS", "DiodeModel", "Amplifier", "Conductance", "DiodeClamp", "IdealDiode", "PiecewiseLinearDiode", "ShockleyDiode", "diode_model",
    "thermal_voltage", "cost", "energy", "kcl_residual", "nudge_current", "readout", "Equilibrium",
    "ConvergenceError", "InputError", "NetworkError", "GraphNetwork", "LayeredNetwork", "layered", "solve", "TabulatedAmplifier", "TwoStageOpAmp",
]
