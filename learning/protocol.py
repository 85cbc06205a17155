"""The one interface the learning layer sees: a Backend settles batches and reports local statistics.

EqProp needs, for every trainable parameter theta, the derivative of the energy dE/dtheta at an
equilibrium: for a conductance it is (kappa/2) * (voltage drop across it)^2, a quantity the device
itself sees. A backend reports it summed over the batch (``local_statistics``); the learning layer
differences it between phases. Nothing else about a backend's internals is used.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from eqprop.circuits import Equilibrium


@runtime_checkable
class Backend(Protocol):
    name: str

    def settle(self, x: np.ndarray, y: np.ndarray | None = None, beta: float = 0.0,
               init: Equilibrium | None = None) -> Equilibrium:
        """Equilibrium of a batch; nudged by beta towards y when beta != 0, warm-started from init."""

    def parameters(self) -> list:
        """The trainable arrays (conductances, weights), live: the learning layer updates them in place."""

    def parameter_names(self) -> list:
        """One name per parameter array, e.g. 'weights[0]'."""

    def local_statistics(self, eq: Equilibrium) -> list:
        """dE/dtheta summed over the batch, one array per parameter, from each device's own drop."""

    @property
    def cost_weight(self) -> float:
        """kappa_L: the energy weight of the output layer (the nudge enters the energy as kappa_L beta C)."""

    def sync(self) -> None:
        """Called after the parameters changed (a simulator reloads them)."""


def describe(backend) -> str:
    return f"{backend.name} backend with {sum(p.size for p in backend.parameters())} parameters"
