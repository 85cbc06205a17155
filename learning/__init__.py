"""EqProp on any backend: the Backend protocol, phases, local updates, trainer, data and CLI."""
from .device_models import DeviceModel, preset
from .eqprop import Phases, cosine, eqprop_gradient, relative_error, run_phases
from .exact_gradient import resistive_exact_gradient
from .native import NativeBackend
from .protocol import Backend
from .trainer import EqPropTrainer, TrainConfig

__all__ = ["Backend", "DeviceModel", "EqPropTrainer", "NativeBackend", "Phases", "TrainConfig", "cosine",
           "eqprop_gradient", "preset", "relative_error", "resistive_exact_gradient", "run_phases"]
