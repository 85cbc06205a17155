"""EqProp on any backend: phases, the local-update estimate, the trainer, data, run directories."""
from eqprop.backends import Backend
from eqprop.backends.native import NativeBackend
from eqprop.circuits.gradient import resistive_exact_gradient

from .eqprop import Phases, cosine, eqprop_gradient, relative_error, run_phases
from .programming import ProgrammingModel, preset
from .trainer import EqPropTrainer, TrainConfig

__all__ = ["Backend", "EqPropTrainer", "NativeBackend", "Phases", "ProgrammingModel", "TrainConfig", "cosine",
           "eqprop_gradient", "preset", "relative_error", "resistive_exact_gradient", "run_phases"]
