"""The same architecture, trained by backpropagation: what the physics and EqProp cost.

A feed-forward network with the resistive network's layer sizes, inputs, clamp and readout: the inputs as +x/-x
(the circuit's source pairs), each hidden layer clip(W^T u + b, v_low, v_high) (the ideal diode clamp to the
rails, the amplifiers' gain absorbed in the signed weights), the outputs linear in pairs (prediction k =
o_k+ - o_k-), the circuit's targets (+-target amplitude) and loss (1/2 |prediction - y|^2). Its weights are signed
and free, it has no feedback (a layer does not load the one before it) and its gradient is exact
(backpropagation), so the accuracy gap between it and a circuit trained by EqProp on the same data is what the
physics (positive conductances, loading, the energy's equilibrium) and the EqProp estimate cost together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqprop.circuits import Equilibrium
from eqprop.circuits.errors import InputError, NetworkError

from .base import Backend, ResistiveBackend, check_layers, layer_arrays, layers_from_arrays


@dataclass
class FeedForwardNetwork:
    sizes: tuple  # (2 n_features, hidden..., 2 n_classes): the circuit's node counts
    weights: list  # W_l (sizes[l], sizes[l + 1]), signed
    biases: list  # b_l (sizes[l + 1],)
    rails: tuple = (-0.05, 0.05)

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1 or self.sizes[0] % 2 or self.sizes[-1] % 2:
            raise NetworkError(f"sizes needs +x/-x inputs and output pairs (even first and last), got {self.sizes}")
        lo, hi = (float(v) for v in self.rails)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise NetworkError(f"rails need low < high, got {self.rails}")
        self.rails = (lo, hi)
        check_layers(self.sizes, self.weights, self.biases)

    @classmethod
    def create(cls, sizes, rails=(-0.05, 0.05), seed=0) -> "FeedForwardNetwork":
        """Glorot-uniform weights scaled to the layer's input range (the first layer's inputs span [0, 1], the
        others the rails), zero biases."""
        rng = np.random.default_rng(seed)
        sizes = tuple(int(s) for s in sizes)
        half = 0.5 * (float(rails[1]) - float(rails[0]))
        ws = [rng.uniform(-1, 1, (a, b)) * np.sqrt(6.0 / (a + b)) * (half if l == 0 else 1.0)
              for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        return cls(sizes, ws, [np.zeros(b) for b in sizes[1:]], tuple(rails))

    @property
    def n_features(self) -> int:
        return self.sizes[0] // 2

    @property
    def n_targets(self) -> int:
        return self.sizes[-1] // 2

    @property
    def free_sizes(self) -> tuple:
        return self.sizes[1:]

    def check_inputs(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"x must have shape (batch, {self.n_features}), got {x.shape}")
        if not np.isfinite(x).all():
            raise InputError("x holds NaN/inf")
        return x

    def forward(self, x) -> list:
        """The layers' outputs: hidden ones clipped to the rails, the last one linear."""
        u = np.hstack([x, -x])
        layers = []
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            s = u @ w + b
            u = s if l == len(self.weights) - 1 else np.clip(s, *self.rails)
            layers.append(u)
        return layers

    def prediction(self, out) -> np.ndarray:
        k = self.n_targets
        return out[:, :k] - out[:, k:]

    def gradient(self, x, y) -> tuple:
        """(d mean loss / d weights..., biases...; mean loss) by backpropagation."""
        x = self.check_inputs(x)
        layers = self.forward(x)
        inputs = [np.hstack([x, -x])] + layers[:-1]
        pred = self.prediction(layers[-1])
        err = (pred - y) / len(x)  # d mean loss / d prediction
        delta = np.hstack([err, -err])
        gw, gb = [], []
        for l in range(len(self.weights) - 1, -1, -1):
            gw.append(inputs[l].T @ delta)
            gb.append(delta.sum(0))
            if l:
                lo, hi = self.rails
                inside = (inputs[l] > lo) & (inputs[l] < hi)  # the clip passes the gradient only between the rails
                delta = (delta @ self.weights[l].T) * inside
        loss = float(0.5 * ((pred - y) ** 2).sum(1).mean())
        return gw[::-1] + gb[::-1], loss


class BackpropBackend(Backend):
    """The digital reference of the same architecture (``FeedForwardNetwork``), trained by backpropagation."""

    name = "backprop"
    family = "backprop"
    signed = True
    #: the trainer takes the gradient from ``gradient`` (exact), not from EqProp's phases
    backprop = True
    defaults: dict = {}  # the circuits' own training defaults (batch, momentum, decay): the same pipeline

    # Circuit fields a feed-forward network has no use for, with the values that leave them unset (the clamp's
    # rails and the targets' amplitude it does use)
    CIRCUIT_FIELDS = {"gain": (None, 4.0), "g_range": (None,), "diode_is": (None,), "noise_capacitance": (None,),
                      "noise_window": (0.0,), "amplifier": (None,)}

    def __init__(self, network: FeedForwardNetwork):
        self.network = network

    @classmethod
    def check_config(cls, cfg) -> None:
        flags = [f"--{k.replace('_', '-')}" for k, unset in cls.CIRCUIT_FIELDS.items()
                 if (list(v) if isinstance(v := getattr(cfg, k, None), tuple) else v) not in unset]
        if getattr(cfg, "hidden_pairs", None):
            flags.append("--hidden-pairs")
        if flags:
            raise ValueError(f"the {cls.name} backend is a feed-forward network (signed weights, no amplifiers or "
                             f"devices): {', '.join(flags)} set{'s' if len(flags) == 1 else ''} a circuit's values, which "
                             "it does not use; leave them out")

    @classmethod
    def from_config(cls, network, cfg) -> "BackpropBackend":
        return cls(network)

    @classmethod
    def build_network(cls, cfg, n_features: int, n_classes: int) -> FeedForwardNetwork:
        return FeedForwardNetwork.create([2 * n_features] + list(cfg.hidden) + [2 * n_classes], cfg.rails, cfg.seed)

    @classmethod
    def default_lr(cls, hidden) -> list:
        """1 for the first connection (its weights' scale is the rails', its inputs' [0, 1]), 0.02 for the others:
        the best on digits 128-100-20, 10 epochs, seed 0, of first-layer rates 0.3 to 10 and later ones 0.003 to
        0.03 (docs/results.md)."""
        return [1.0] + [0.02] * len(hidden)

    @classmethod
    def network_to_data(cls, network) -> tuple:
        return {"sizes": list(network.sizes), "rails": list(network.rails)}, layer_arrays(network)

    @classmethod
    def network_from_data(cls, meta, arrays) -> FeedForwardNetwork:
        return FeedForwardNetwork(meta["sizes"], *layers_from_arrays(arrays, len(meta["sizes"]) - 1,
                                                                     "feed-forward network"), tuple(meta["rails"]))

    #: the circuits' targets: +amplitude for the true class, -amplitude for the others
    targets = staticmethod(ResistiveBackend.targets)

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        """The forward pass, in an equilibrium's form (no nudged phase: it learns by backpropagation)."""
        if beta:
            raise NetworkError("the backprop reference has no nudged phase; it learns by backpropagation")
        x = self.network.check_inputs(x)
        layers = self.network.forward(x)
        return Equilibrium(np.hstack(layers), x, self.network.prediction(layers[-1]), 0, 0.0, 0.0, y,
                           self.network.free_sizes, "feed-forward")

    def parameters(self) -> list:
        return list(self.network.weights) + list(self.network.biases)

    def parameter_scales(self) -> list:
        """Each layer's initial weight scale (its biases share it): the rates are relative to it."""
        half = 0.5 * (self.network.rails[1] - self.network.rails[0])
        s = [np.sqrt(6.0 / (a + b)) * (half if l == 0 else 1.0)
             for l, (a, b) in enumerate(zip(self.network.sizes[:-1], self.network.sizes[1:]))]
        return s + s

    def loss_unit(self, cfg) -> float:
        return float(cfg.target_amplitude) ** 2

    def gradient(self, x, y) -> tuple:
        return self.network.gradient(x, y)

    def exact_gradient(self, free, y) -> tuple:
        return self.network.gradient(free.inputs, y)

    def local_statistics(self, eq):
        raise NetworkError("the backprop reference has no local statistics (it learns by backpropagation)")

    def sync(self) -> None:
        self.network.__post_init__()
