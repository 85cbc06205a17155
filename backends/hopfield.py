"""The digital reference: the continuous Hopfield network of Scellier & Bengio (2017), in numpy.

Energy, with rho the hard sigmoid clip(s, 0, 1) and layers x (clamped) -> h_1 ... -> o:
    E = 1/2 sum_l |s_l|^2 - sum_l rho(s_{l-1})^T W_l rho(s_l) - sum_l b_l^T rho(s_l),   F = E + beta/2 |o - y|^2.
Given its neighbours, each layer's exact minimiser is closed form (inside [0, 1] the energy is a
quadratic; outside, rho is flat and 1/2 s^2 pulls back to the box):
    s_l = clip(W_l^T rho(s_{l-1}) + W_{l+1} rho(s_{l+1}) + b_l, 0, 1),   o = clip((d_o + beta y) / (1 + beta), 0, 1),
so equilibria come from the same exact block coordinate descent as the ideal-diode circuits (Scellier
2024): the hard sigmoid *is* the ideal diode clamp. The EqProp statistics are dE/dW = -rho(pre) rho(post)^T
and dE/db = -rho(s), and the exact gradient comes from implicit differentiation over the unclamped units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqprop.circuits import Equilibrium
from eqprop.circuits.errors import ConvergenceError, InputError, NetworkError

from .base import Backend, check_layers, layer_arrays, layers_from_arrays

# Scellier & Bengio (2017), MNIST: per-layer rates for 1, 2 and 3 hidden layers (input side first)
PAPER_LR = {1: [0.1, 0.05], 2: [0.4, 0.1, 0.01], 3: [0.128, 0.032, 0.008, 0.002]}


def rho(s):
    return np.clip(s, 0.0, 1.0)


@dataclass
class HopfieldNetwork:
    sizes: tuple  # (n_inputs, hidden..., n_outputs)
    weights: list  # W_l (sizes[l-1], sizes[l])
    biases: list  # b_l (sizes[l],)

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise NetworkError(f"sizes needs an input and an output layer of >= 1 unit, got {self.sizes}")
        check_layers(self.sizes, self.weights, self.biases)

    @classmethod
    def create(cls, sizes, seed=0) -> "HopfieldNetwork":
        """Glorot-uniform weights and zero biases, as in Scellier & Bengio (2017)."""
        rng = np.random.default_rng(seed)
        sizes = tuple(int(s) for s in sizes)
        ws = [rng.uniform(-1, 1, (a, b)) * np.sqrt(6.0 / (a + b)) for a, b in zip(sizes[:-1], sizes[1:])]
        return cls(sizes, ws, [np.zeros(b) for b in sizes[1:]])

    @property
    def n_features(self) -> int:
        return self.sizes[0]

    @property
    def n_targets(self) -> int:
        return self.sizes[-1]

    @property
    def free_sizes(self) -> tuple:
        return self.sizes[1:]

    def check_inputs(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise InputError(f"x must have shape (batch, {self.sizes[0]}), got {np.shape(x)}")
        if not np.isfinite(x).all():
            raise InputError("x holds NaN/inf; clean the data first")
        return x

    def energy(self, x, layers, y=None, beta=0.0) -> np.ndarray:
        states = [x] + list(layers)
        e = sum(0.5 * (s**2).sum(1) for s in layers)
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            e = e - np.einsum("bi,ij,bj->b", rho(states[l]), w, rho(states[l + 1])) - rho(states[l + 1]) @ b
        if beta and y is not None:
            e = e + 0.5 * beta * ((layers[-1] - y) ** 2).sum(1)
        return e


def settle(net: HopfieldNetwork, x, y=None, beta: float = 0.0, init=None, tol: float = 1e-10,
           max_iter: int = 20000) -> Equilibrium:
    """Exact block coordinate descent to the equilibrium (layers updated in turn, each exactly)."""
    x = net.check_inputs(x)
    if beta != 0.0:
        if y is None:
            raise InputError("a nudged phase (beta != 0) needs targets y")
        if beta <= -1.0:
            raise InputError(f"beta={beta} leaves the output energy without a minimum; use |beta| < 1")
    B, L = x.shape[0], len(net.weights)
    if init is not None:
        v = init.voltages if isinstance(init, Equilibrium) else np.asarray(init, dtype=float)
        layers = np.split(v.copy(), np.cumsum(net.free_sizes)[:-1], axis=1)
    else:
        layers = [np.zeros((B, n)) for n in net.free_sizes]
    bottom = rho(x) @ net.weights[0]  # the clamped input's drive never changes
    change = np.inf
    for it in range(1, max_iter + 1):
        change = 0.0
        for l in range(L):
            d = (bottom if l == 0 else rho(layers[l - 1]) @ net.weights[l]) + net.biases[l]
            if l + 1 < L:
                d = d + rho(layers[l + 1]) @ net.weights[l + 1].T
            if l == L - 1 and beta != 0.0:
                new = rho((d + beta * y) / (1.0 + beta))
            else:
                new = rho(d)
            change = max(change, float(np.abs(new - layers[l]).max(initial=0.0)))
            layers[l] = new
        if change <= tol:
            break
    else:
        raise ConvergenceError(f"Hopfield settling did not converge in {max_iter} sweeps (change {change:.2e})",
                               -1, change)
    return Equilibrium(np.hstack(layers), x, layers[-1], it, change, beta, y, net.free_sizes, "hopfield-bcd")


class HopfieldBackend(Backend):
    """The digital reference behind the protocol: signed weights trained by plain SGD, one-hot targets."""

    name = "hopfield"
    family = "hopfield"
    signed = True
    # Scellier & Bengio (2017): beta 0.5 with a random sign, no momentum, minibatch 20; units live in [0, 1]
    defaults = {"beta": 0.5, "momentum": 0.0, "lr_decay": 1.0, "batch_size": 20, "nudging": "random", "tol": 1e-7}

    def __init__(self, network: HopfieldNetwork, tol: float = 1e-10):
        self.network = network
        self.tol = tol

    # Circuit fields a Hopfield network has no use for, with the values that leave them unset: a config that sets
    # one is refused rather than recorded and ignored.
    CIRCUIT_FIELDS = {"gain": (None, 4.0), "rails": (None, [-0.05, 0.05]), "target_amplitude": (0.05,),
                      "g_range": (None,), "diode_is": (None,), "noise_capacitance": (None,), "noise_window": (0.0,),
                      "amplifier": (None,)}

    @classmethod
    def check_config(cls, cfg) -> None:
        as_set = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731 - config.json gives lists, flags tuples
        flags = [f"--{k.replace('_', '-')}" for k, unset in cls.CIRCUIT_FIELDS.items()
                 if as_set(getattr(cfg, k, None)) not in unset]
        if flags:
            raise ValueError(f"the {cls.name} backend is a digital network (units in [0, 1], signed weights): "
                             f"{', '.join(flags)} set{'s' if len(flags) == 1 else ''} a circuit's values, which it does "
                             "not use; leave them out")

    @classmethod
    def from_config(cls, network, cfg) -> "HopfieldBackend":
        return cls(network, tol=cfg.tol)

    @classmethod
    def build_network(cls, cfg, n_features: int, n_classes: int) -> HopfieldNetwork:
        return HopfieldNetwork.create([n_features] + list(cfg.hidden) + [n_classes], seed=cfg.seed)

    @classmethod
    def default_lr(cls, hidden) -> list:
        """The paper's rates for 1-3 hidden layers; deeper: each layer 4x below the one before it."""
        return list(PAPER_LR.get(len(hidden)) or [0.128 / 4**k for k in range(len(hidden) + 1)])

    @classmethod
    def network_to_data(cls, network) -> tuple:
        return {"sizes": list(network.sizes)}, layer_arrays(network)

    @classmethod
    def network_from_data(cls, meta, arrays) -> HopfieldNetwork:
        return HopfieldNetwork(meta["sizes"], *layers_from_arrays(arrays, len(meta["sizes"]) - 1, "Hopfield network"))

    @staticmethod
    def targets(labels, n_classes: int, amplitude: float) -> np.ndarray:
        """One-hot targets in {0, 1} (the units' range); ``amplitude`` is a circuit's, not used here."""
        return np.eye(n_classes)[labels]

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        return settle(self.network, x, y, beta, init, self.tol)

    def parameters(self) -> list:
        return list(self.network.weights) + list(self.network.biases)

    def local_statistics(self, eq: Equilibrium) -> list:
        """dE/dtheta summed over the batch: -rho(pre)^T rho(post) for weights, -rho(s) for biases."""
        states = [eq.inputs] + eq.layers
        ws = [-(rho(states[l]).T @ rho(states[l + 1])) for l in range(len(self.network.weights))]
        bs = [-rho(s).sum(0) for s in eq.layers]
        return ws + bs

    def sync(self) -> None:
        self.network.__post_init__()

    def exact_gradient(self, free, y) -> tuple:
        return hopfield_exact_gradient(self.network, free, y)


def hopfield_exact_gradient(net: HopfieldNetwork, free_eq: Equilibrium, y) -> tuple:
    """(d mean loss / d theta for weights..., biases...; mean loss), by implicit differentiation.

    Inside the box the stationarity reads s = M s + c(theta) with M the symmetric layer couplings, so
    with A the unclamped units (0 < s < 1), H = I - M_AA and lambda = H^-1 dL/ds_A, the gradient is
    lambda^T dd_A/dtheta (clamped units do not move with theta).
    """
    y = np.asarray(y, dtype=float)
    layers, x = free_eq.layers, free_eq.inputs
    B, sizes, L = x.shape[0], net.free_sizes, len(net.weights)
    offs = np.concatenate([[0], np.cumsum(sizes)])
    n = offs[-1]
    M = np.zeros((n, n))
    for l in range(1, L):
        M[offs[l - 1]:offs[l], offs[l]:offs[l + 1]] = net.weights[l]
        M[offs[l]:offs[l + 1], offs[l - 1]:offs[l]] = net.weights[l].T
    s = free_eq.voltages
    lam = np.zeros((B, n))
    for b in range(B):
        a = (s[b] > 1e-12) & (s[b] < 1 - 1e-12)
        rhs = np.zeros(n)
        rhs[offs[-2]:] = s[b, offs[-2]:] - y[b]
        idx = np.nonzero(a)[0]
        if idx.size:
            H = np.eye(idx.size) - M[np.ix_(idx, idx)]
            lam[b, idx] = np.linalg.solve(H, rhs[idx])
    lams = np.split(lam, offs[1:-1], axis=1)
    states = [x] + layers
    gw = []
    for l in range(L):
        g = rho(states[l]).T @ lams[l]  # through d_l (post side)
        if l > 0:
            g = g + lams[l - 1].T @ rho(states[l + 1])  # through d_{l-1} (pre side)
        gw.append(g / B)
    gb = [lm.sum(0) / B for lm in lams]
    loss = float(0.5 * ((layers[-1] - y) ** 2).sum(1).mean())
    return gw + gb, loss
