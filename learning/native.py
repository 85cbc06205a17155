"""The native circuit backend: circuits.solve behind the Backend protocol."""
from __future__ import annotations

import numpy as np

from eqprop.circuits import Equilibrium, LayeredNetwork, solve


def squared_drops(u: np.ndarray, v: np.ndarray, a: float = 1.0) -> np.ndarray:
    """sum over the batch of (a u_i - v_j)^2 for every pair (i, j), without the (batch, i, j) tensor."""
    return (a * a) * (u * u).sum(0)[:, None] - 2.0 * a * (u.T @ v) + (v * v).sum(0)[None, :]


class ResistiveParameters:
    """What every circuit backend shares: its parameters are ``self.network``'s conductances, and its local
    statistics are the squared drops across them, from whatever node voltages the backend settled to."""

    network: LayeredNetwork

    def parameters(self) -> list:
        return list(self.network.weights) + list(self.network.biases)

    def parameter_names(self) -> list:
        L = self.network.n_connections
        return [f"weights[{c}]" for c in range(L)] + [f"biases[{c}]" for c in range(L)]

    @property
    def cost_weight(self) -> float:
        return float(self.network.energy_weights[-1])

    def local_statistics(self, eq: Equilibrium) -> list:
        return resistive_statistics(self.network, eq.inputs, eq.layers)


class NativeBackend(ResistiveParameters):
    """Settles a LayeredNetwork with the native block-coordinate-descent solver."""

    name = "native"

    def __init__(self, network: LayeredNetwork, tol: float = 1e-10, max_iter: int = 5000):
        self.network = network
        self.tol = tol
        self.max_iter = max_iter

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        return solve(self.network, x, y, beta, init, tol=self.tol, max_iter=self.max_iter)

    def sync(self) -> None:
        self.network.validate()


def resistive_statistics(net: LayeredNetwork, x, layers) -> list:
    """dE/dG summed over the batch: kappa_c / 2 * (drop across each conductance)^2, weights then biases."""
    kappa = net.energy_weights
    src = net.encode_inputs(x)
    vb = net.bias_voltage
    weights, biases = [], []
    for c in range(net.n_connections):
        u = src if c == 0 else layers[c - 1]
        v = layers[c]
        weights.append(0.5 * kappa[c] * squared_drops(u, v, net.gains[c]))
        biases.append(0.5 * kappa[c] * np.stack([((v - vb) ** 2).sum(0), ((v + vb) ** 2).sum(0)]))
    return weights + biases
