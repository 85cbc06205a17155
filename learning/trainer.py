"""The EqProp trainer: phases, local updates through a device model, SGD with momentum, metrics.

Parameters are optimised in units of their layer's reference conductance g_ref (the mean initial
conductance of that array, times sqrt(fan_in / 100)), so one learning rate works for a 1568-input
layer of nanosiemens as for a 32-input layer of tens of nanosiemens (a layer's output moves by
about fan_in times the per-device step, hence the fan-in factor; rates are quoted for 100 inputs):
    p = G / g_ref,   dL/dp = g_ref * dL/dG,   G <- device(G, -g_ref * lr * velocity).
``beta`` is given relative to the mean conductance of an output node, for the same reason, and the
loss is counted in units of target_amplitude^2, so learning rates do not depend on the voltage scale.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from eqprop.circuits.energy import node_conductance

from .data import targets
from .device_models import DeviceModel
from .eqprop import eqprop_gradient, run_phases


class ConfigError(ValueError):
    """A training config (CLI flags, config.json or a sweep file) with a bad or unknown field."""


@dataclass
class TrainConfig:
    dataset: str = "digits"
    data: str | None = None
    backend: str = "native"
    hidden: list = field(default_factory=lambda: [100])
    epochs: int = 10
    batch_size: int = 32
    lr: list = field(default_factory=lambda: [10.0, 5.0])  # per connection (weights and biases of layer c)
    lr_decay: float = 0.99  # multiplied into every lr after each epoch
    momentum: float = 0.9
    beta: float = 0.1  # relative to the mean output-node conductance
    nudging: str = "centered"
    target_amplitude: float = 0.05  # volts per output pair (+ for the true class, - otherwise)
    input_scale: float = 1.0  # volts per unit of pixel intensity
    diode: str = "ideal"
    diode_is: float | None = None  # Shockley saturation current (A); None: 1e-14. ~1e-7 (Schottky-like)
    # puts the knee near the rail at these nA currents, which is what makes the clamp a nonlinearity
    rails: tuple = (-0.05, 0.05)
    gain: float = 4.0
    g_range: tuple | None = None
    device: str = "ideal"
    seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    tol: float = 1e-9
    workers: int | None = None  # processes for the spice backend (default: up to 2)
    fixed_point: bool = False  # lava backend: the fixed-point (Loihi bit-width) models instead of float
    cluster: str | None = None  # spice backend: 'ray' (local Ray) or a Ray address; None: local processes
    checkpoint_every: float | None = 600.0  # seconds between checkpoints inside an epoch (None: once per epoch)

    def validate(self) -> "TrainConfig":
        """Every field checked before anything runs: a bad value fails here, naming the field and the fix."""
        from .data import DATASETS
        from .device_models import PRESETS
        from .eqprop import NUDGINGS

        def bad(field_, value, need):
            raise ConfigError(f"config field {field_!r} = {value!r}: {need}")

        def positive(name, integer=False, allow_none=False, allow_zero=False, need=None):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            below = (lambda u: u < 0) if allow_zero else (lambda u: u <= 0)
            if isinstance(v, bool) or not isinstance(v, kind) or not np.isfinite(v) or below(v):
                bad(name, v, need or f"must be a positive {'integer' if integer else 'finite number'}")

        choices = {"dataset": DATASETS, "backend": ("native", "spice", "hopfield", "lava"), "nudging": NUDGINGS,
                   "diode": ("ideal", "shockley", "pwl"), "device": PRESETS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                bad(name, getattr(self, name), f"use one of {', '.join(map(str, allowed))}")
        for name in ("epochs", "batch_size"):
            positive(name, integer=True)
        for name in ("n_train", "n_test", "workers"):
            positive(name, integer=True, allow_none=True)
        for name in ("beta", "target_amplitude", "input_scale", "gain", "tol", "lr_decay"):
            positive(name)
        positive("diode_is", allow_none=True)
        positive("checkpoint_every", allow_none=True, allow_zero=True,
                 need="must be seconds >= 0 (0: after every step) or null")
        if not isinstance(self.momentum, (int, float)) or isinstance(self.momentum, bool) or not 0 <= self.momentum < 1:
            bad("momentum", self.momentum, "must be in [0, 1)")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            bad("seed", self.seed, "must be a non-negative integer")
        hidden = list(self.hidden) if isinstance(self.hidden, (list, tuple)) else None
        if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0 for h in hidden):
            bad("hidden", self.hidden, "must be a non-empty list of positive layer sizes, e.g. [100]")
        lr = list(self.lr) if isinstance(self.lr, (list, tuple)) else None
        if (not lr or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0
                          for v in lr)):
            bad("lr", self.lr, "must be a non-empty list of learning rates >= 0, one per connection, e.g. [10, 5]")
        rails = list(self.rails) if isinstance(self.rails, (list, tuple)) else []
        if len(rails) != 2 or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in rails) \
                or not rails[0] < rails[1]:
            bad("rails", self.rails, "must be two voltages (low, high) with low < high, e.g. [-0.05, 0.05]")
        if self.g_range is not None:
            g = list(self.g_range) if isinstance(self.g_range, (list, tuple)) else []
            if len(g) != 2 or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in g) \
                    or not 0 <= g[0] < g[1]:
                bad("g_range", self.g_range, "must be (low, high) siemens with 0 <= low < high, or null")
        if self.data is not None and not isinstance(self.data, str):
            bad("data", self.data, "must be a path (string) or null")
        if self.cluster is not None and not isinstance(self.cluster, str):
            bad("cluster", self.cluster, "must be 'ray', a Ray address, or null")
        return self

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "TrainConfig":
        """A config from a mapping (config.json, a sweep file): unknown keys are an error, not ignored."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where} must be a table of config fields, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where} has unknown field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}")
        d = dict(d)
        for key in ("rails", "g_range"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rails"] = list(self.rails)
        d["g_range"] = None if self.g_range is None else list(self.g_range)
        return d


class EqPropTrainer:
    """Trains any Backend with EqProp. Holds the optimiser state so a checkpoint can restore it exactly."""

    def __init__(self, backend, config: TrainConfig, device: DeviceModel, output_conductance: float):
        self.backend = backend
        self.config = config
        self.device = device
        self.rng = np.random.default_rng(config.seed)
        params = backend.parameters()
        n_conn = len(params) // 2
        fan_in = [p.shape[0] for p in params[:n_conn]] * 2  # biases share their connection's fan-in
        self.g_ref = [(float(p.mean()) if p.mean() > 0 else 1.0) * np.sqrt(f / 100.0) for p, f in zip(params, fan_in)]
        self.velocity = [np.zeros_like(p) for p in params]
        lr = list(config.lr)
        if len(lr) == 1:
            lr = lr * n_conn
        if len(lr) != n_conn:
            raise ValueError(f"lr needs one value per connection ({n_conn}) or a single value, got {len(lr)}")
        self.lr = lr + lr  # weights then biases of each connection share its rate
        self.beta_abs = config.beta * output_conductance
        self.d2d = [device.device_gains(p.shape, self.rng) for p in params]
        self.epoch = 0

    def step(self, x, labels) -> dict:
        cfg = self.config
        y = targets(labels, self.n_classes, cfg.target_amplitude)
        ph = run_phases(self.backend, x, y, self.beta_abs, cfg.nudging, self.rng)
        if self.device.read_noise:
            for eq in (ph.free, ph.plus, ph.minus):
                if eq is not None:
                    eq.voltages = self.device.read(eq.voltages, self.rng)
        grads = eqprop_gradient(self.backend, ph)
        decay = cfg.lr_decay ** self.epoch
        for p, g, v, ref, lr, gains in zip(self.backend.parameters(), grads, self.velocity, self.g_ref, self.lr, self.d2d):
            v *= cfg.momentum
            v += (ref / cfg.target_amplitude**2) * g  # dimensionless: p = G / g_ref, loss in units of amplitude^2
            self.device.apply(p, -(lr * decay * ref) * v, self.rng, gains)
        self.backend.sync()
        pred = ph.free.prediction
        return {"loss": float(0.5 * ((pred - y) ** 2).sum(1).mean()),
                "correct": int((pred.argmax(1) == labels).sum())}

    n_classes = 10

    def evaluate(self, x, labels, batch_size: int = 512) -> dict:
        y = targets(labels, self.n_classes, self.config.target_amplitude)
        loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            eq = self.backend.settle(x[i:i + batch_size])
            pred = eq.prediction
            loss += float(0.5 * ((pred - y[i:i + batch_size]) ** 2).sum())
            correct += int((pred.argmax(1) == labels[i:i + batch_size]).sum())
        return {"loss": loss / len(x), "accuracy": correct / len(x)}

    def state(self) -> dict:
        return {"velocity": self.velocity, "epoch": self.epoch, "rng": self.rng.bit_generator.state,
                "g_ref": self.g_ref, "d2d": self.d2d, "beta_abs": self.beta_abs}

    def load_state(self, state: dict) -> None:
        self.velocity = [np.array(v) for v in state["velocity"]]
        self.epoch = int(state["epoch"])
        self.rng.bit_generator.state = state["rng"]
        self.g_ref = list(state["g_ref"])
        self.d2d = state["d2d"]
        self.beta_abs = float(state["beta_abs"])


def mean_output_conductance(net) -> float:
    return float(node_conductance(net)[-1].mean())
