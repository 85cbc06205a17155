"""The native circuit backend: circuits.solve (exact block coordinate descent) behind the protocol."""
from __future__ import annotations

from eqprop.circuits import Equilibrium, LayeredNetwork, solve

from .base import ResistiveBackend


class NativeBackend(ResistiveBackend):
    name = "native"

    def __init__(self, network: LayeredNetwork, tol: float = 1e-10, max_iter: int = 5000):
        self.network = network
        self.tol = tol
        self.max_iter = max_iter

    @classmethod
    def from_config(cls, network, cfg) -> "NativeBackend":
        return cls(network, tol=cfg.tol)

    def sync(self) -> None:
        """Nothing to reload: every solve validates the conductances it reads (once per ``unchanged()``
        block), so a fault an update left is reported by the next solve, before anything uses it."""

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        return solve(self.network, x, y, beta, init, tol=self.tol, max_iter=self.max_iter)
