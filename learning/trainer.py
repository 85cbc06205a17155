"""The EqProp trainer: phases, local updates through a device model, SGD with momentum, metrics.

Parameters are optimised in units of their layer's reference conductance g_ref (the mean initial
conductance of that array, times sqrt(fan_in / 100)), so one learning rate works for a 1568-input
layer of nanosiemens as for a 32-input layer of tens of nanosiemens (a layer's output moves by
about fan_in times the per-device step, hence the fan-in factor; rates are quoted for 100 inputs):
    p = G / g_ref,   dL/dp = g_ref * dL/dG,   G <- device(G, -g_ref * lr * velocity).
``beta`` is given relative to the mean conductance of an output node, for the same reason, and the
loss is counted in units of target_amplitude^2, so learning rates do not depend on the voltage scale.
Each backend supplies these units (``parameter_scales``, ``beta_unit``, ``loss_unit``); the Hopfield
reference's are 1, and its signed weights take plain SGD instead of a programming model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from eqprop import backends
from eqprop.circuits.energy import PairedRows

from .eqprop import NUDGINGS, eqprop_statistics, run_phases
from .programming import PRESETS, ProgrammingModel
from .update import sgd_step, sgd_step_pairs


class ConfigError(ValueError):
    """A training config (CLI flags, config.json or a sweep file) with a bad or unknown field."""


# What a field is when neither the user nor the backend (``Backend.defaults``) sets it.
DEFAULTS = {"batch_size": 32, "lr_decay": 0.99, "momentum": 0.9, "beta": 0.1, "nudging": "centered", "tol": 1e-9}

HELP = {
    "dataset": "dataset name (see eqprop info)",
    "data": "path: an .npz with x_train/y_train/x_test/y_test, or a directory of IDX files",
    "backend": "what settles the network",
    "hidden": "hidden layer sizes, e.g. 100 or 1024 1024",
    "epochs": "training epochs",
    "batch_size": "samples per update (default 32; hopfield 20)",
    "lr": "learning rate per connection, input side first (one value, or one per connection = hidden layers + 1); "
          "default: the backend's rule (docs/physics.md: Learning rates)",
    "lr_decay": "factor applied to every rate after each epoch (default 0.99; hopfield 1)",
    "warmup": "epochs (a fraction allowed) over which every rate ramps up linearly from its first step to its "
              "full value; 0: none (default 0)",
    "shift": "data augmentation: each training image moved by a random whole number of pixels, up to this many in "
             "each direction (rows and columns drawn apart, new each epoch, the border filled with 0); 0: none "
             "(default 0). Test images are never moved",
    "dropout": "fraction in [0, 1) of hidden nodes held at 0 V by a switch to ground, drawn anew for each training "
               "sample and kept through its free and nudged phases (dropout in hardware; never at test); 0: none "
               "(default 0)",
    "weight_decay": "L2 pull of every parameter toward 0: its dimensionless value (G / g_ref) times this added to "
                    "each step's gradient, so a conductance shrinks by lr x weight_decay of itself per step beside "
                    "its update; 0: none (default 0)",
    "momentum": "SGD momentum in [0, 1) (default 0.9; hopfield 0)",
    "wire": "ohms of crossbar wire between neighbouring crossings (the wired backend: the network settled and trained "
            "as crossbars with resistive row and column wires)",
    "beta": "nudging strength relative to an output node's conductance (default 0.1; hopfield 0.5, absolute)",
    "nudging": "centered (+beta and -beta), positive, negative, or random sign (default centered; hopfield random)",
    "target_amplitude": "volts per output pair: + for the true class, - for the others",
    "input_scale": "volts per unit of pixel intensity at the input sources",
    "diode": "diode model of the neuron clamps, or a characterised transistor clamp's .json (eqprop transistors)",
    "diode_is": "Shockley saturation current in amperes, e.g. 1e-7 (only with --diode shockley)",
    "rails": "diode rail voltages, low high",
    "gain": "amplifier gain between layers: one value, or one per hidden layer (input side first); default 4, and "
            "4 sqrt(n) for a differential amplifier driven by n hidden nodes into another hidden layer",
    "hidden_pairs": "differential hidden amplifiers (+aV and -aV into the next layer, like the +x/-x inputs): 'on' or "
                    "'off'; default on for two or more hidden layers where the backend has them (docs/physics.md: Deep "
                    "networks)",
    "g_range": "initial conductance range in siemens, low high (default: Kendall-style, from the fan-in)",
    "device": "programming model of the conductances (bounds, levels, write noise, asymmetry)",
    "seed": "random seed (initialisation, data order, noise)",
    "n_train": "use only the first N training samples",
    "n_test": "use only the first N test samples",
    "validation": "hold out the last N training samples (after --n-train) as a validation set: each epoch's metrics "
                  "add valid_loss and valid_accuracy, measured on them (eqprop tune scores trials there, never on "
                  "the test set); default: none",
    "pixel_max": "the stored pixel value of full intensity (e.g. 255 or 16); default: the rule, 0..255 integers or "
                 "[0, 1] floats, anything else refused",
    "tol": "settling tolerance in volts (default 1e-9; hopfield 1e-7)",
    "workers": "ngspice worker processes for the spice backend (default: up to 2)",
    "fixed_point": "replaced by --backend loihi (integer neurons, Lava's bit-accurate synapses); kept to say so",
    "threshold": "spiking backends (loihi): sigma-delta threshold in volts, or with --spikes binary the spike quantum "
                 "(rounded to a power of two LSBs) (default 1e-4)",
    "spikes": "spiking backends (loihi): graded payloads (sigma-delta) or binary spikes (one quantum each)",
    "time_steps": "spiking backends (loihi): time steps per phase (default 64)",
    "cluster": "spice backend on Ray: 'ray' (a local Ray instance) or a cluster address ('auto', 'ray://HOST:10001')",
    "deadline": "spice backend: seconds each ngspice analysis may run before it is halted and the run stops with "
                "a clear error (default 3600)",
    "checkpoint_every": "also checkpoint inside an epoch this often, in seconds (0: after every step)",
    "noise_capacitance": "thermal noise: every free node has this capacitance (farads, e.g. 1e-13 for 100 fF) and "
                         "each measured equilibrium carries the noise the circuit's conductances make on it "
                         "(docs/noise.md); default: none",
    "amplifier": "the amplifiers as op-amps, e.g. 'a0=1e3 gbw=1e6 rout=100 swing=2.5 offset=1e-3 iq=1e-4 supply=5' "
                 "(DC gain, gain-bandwidth Hz, output ohms, output limit V, input offset V, quiescent A, supply V; "
                 "docs/amplifiers.md), or a characterised transistor-level amplifier's .json (eqprop transistors, "
                 "docs/transistors.md); default: ideal",
    "converters": "the co-simulation's converters (backends with converters: cosim), e.g. 'bits=10 latency=1 "
                  "noise=1e-4': ADC and DAC bits, ADC range (+-V) and input noise (V rms), DAC range (+-A), latency in "
                  "periods, input_bits and input_range of the input DACs, Walden figure of merit (J per conversion "
                  "step; docs/cosim.md); default ideal: 24 bits, no noise, no latency, exact inputs",
    "neurons": "the neurons of on-chip learning (lava-onchip-int): float, or integer (the leak measured and the node "
               "integrated in integers, docs/onchip.md); default float",
    "noise_window": "thermal noise: each measurement averages the node voltages over this many seconds (default 0: "
                    "one instantaneous sample)",
}


SINGLE_ENDED_GAIN = 4.0


def _is_model_file(spec) -> bool:
    """Whether a --diode / --amplifier value names a characterised part's file rather than a model."""
    return isinstance(spec, str) and spec.strip().endswith(".json")


def default_gains(hidden, pairs: bool):
    """The gain rule: 4 for every amplifier of a single-ended network (Kendall's networks); with differential
    hidden layers, 4 sqrt(n) for the amplifier that n hidden nodes drive into the next hidden layer (its signal
    is a signed sum over 2 n random conductances, which grows as sqrt(n) while the node's total conductance
    grows as n: sqrt(n) makes that up) and 4 for the one that drives the outputs. Measured on digits against
    sqrt(c n) for c = 2, 4, 8, 16 (docs/physics.md: Deep networks)."""
    if not pairs:
        return SINGLE_ENDED_GAIN
    return [round(SINGLE_ENDED_GAIN * float(np.sqrt(n)), 4) for n in hidden[:-1]] + [SINGLE_ENDED_GAIN]


@dataclass
class TrainConfig:
    dataset: str = "digits"
    data: str | None = None
    backend: str = "native"
    hidden: list = field(default_factory=lambda: [100])
    epochs: int = 10
    batch_size: int | None = None
    lr: list | None = None  # per connection (weights and biases of connection c); None: the backend's rule
    lr_decay: float | None = None  # multiplied into every lr after each epoch
    warmup: float = 0.0  # epochs of linear warm-up of every lr (0: none)
    shift: int = 0  # augmentation: random translations of training images by up to this many pixels (0: none)
    dropout: float = 0.0  # fraction of hidden nodes grounded, drawn anew for each training sample (0: none)
    weight_decay: float = 0.0  # L2 on the dimensionless parameters G / g_ref, added to each step's gradient
    wire: float | None = None  # ohms per crossbar wire segment (the wired backend only)
    momentum: float | None = None
    beta: float | None = None  # relative to the mean output-node conductance
    nudging: str | None = None
    target_amplitude: float = 0.05  # volts per output pair (+ for the true class, - otherwise)
    input_scale: float = 1.0  # volts per unit of pixel intensity
    diode: str = "ideal"
    diode_is: float | None = None  # Shockley saturation current (A); None: 1e-14. ~1e-7 (Schottky-like)
    # puts the knee near the rail at these nA currents, which is what makes the clamp a nonlinearity
    rails: tuple = (-0.05, 0.05)
    gain: float | list | None = None  # None: 4, or the differential rule (default_gains)
    hidden_pairs: bool | None = None  # None: on for 2+ hidden layers where the backend settles them
    g_range: tuple | None = None
    device: str = "ideal"
    seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    validation: int | None = None  # training samples held out for validation metrics (None: none)
    pixel_max: float | None = None  # the stored value of full intensity; None: the rule (data.pixel_scale)
    tol: float | None = None
    workers: int | None = None  # processes for the spice backend (default: up to 2)
    fixed_point: bool = False  # replaced by the loihi backend; true is refused with that advice
    threshold: float | None = None  # spiking backends: sigma-delta threshold / binary quantum (V)
    spikes: str = "graded"  # spiking backends: graded or binary
    time_steps: int | None = None  # spiking backends: time steps per phase
    cluster: str | None = None  # spice backend: 'ray' (local Ray) or a Ray address; None: local processes
    deadline: float | None = None  # spice backend: seconds per ngspice analysis (None: netlists.ngspice.DEADLINE_S)
    checkpoint_every: float | None = 600.0  # seconds between checkpoints inside an epoch (None: once per epoch)
    noise_capacitance: float | None = None  # F per free node: thermal noise of every measured equilibrium (None: none)
    noise_window: float = 0.0  # s over which each measurement averages the node voltages (0: one sample)
    amplifier: str | None = None  # the amplifiers' model as text ('a0=1e3 rout=100 ...'); None: ideal
    converters: str | None = None  # the co-simulation's converters as text ('bits=10 latency=1'); None: ideal
    neurons: str | None = None  # on-chip learning's neurons (backends with a choice: lava-onchip-int); None: default

    def resolve(self) -> "TrainConfig":
        """Fills the fields left unset from the backend's defaults, then the toolkit's."""
        try:
            own = backends.get(self.backend).load().defaults if isinstance(self.backend, str) else {}
        except backends.BackendError:
            own = {}
        for name, value in {**DEFAULTS, **own}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.hidden_pairs is None and isinstance(self.backend, str) and self.backend in backends.names():
            self.hidden_pairs = self.differential()
        if self.gain is None and isinstance(self.hidden_pairs, bool) and isinstance(self.hidden, (list, tuple)):
            self.gain = default_gains(list(self.hidden), self.hidden_pairs)  # 4 (a scalar) when single-ended
        return self

    def differential(self) -> bool:
        """hidden_pairs, or the rule when it is left out: on for 2+ hidden layers where the backend has them."""
        if self.hidden_pairs is not None:
            return bool(self.hidden_pairs)
        if self.amplifier not in (None, "", "ideal") and not self._inverting_amplifier():
            return False  # a characterised (tabulated) amplifier has no inverting form: single-ended
        hidden = self.hidden if isinstance(self.hidden, (list, tuple)) else []
        return bool(backends.get(self.backend).hidden_pairs and len(hidden) >= 2)

    def _inverting_amplifier(self) -> bool:
        from eqprop.circuits import NetworkError, amplifier_model

        try:
            return bool(getattr(amplifier_model(self.amplifier), "inverting", False))
        except (NetworkError, TypeError):
            return False  # validate() names what is wrong with it

    def validate(self) -> "TrainConfig":
        """Every field checked before anything runs: a bad value fails here, naming the field and the fix."""
        from .data import DATASETS

        self.resolve()

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

        from eqprop.circuits.devices import DIODE_MODELS, diode_names

        choices = {"dataset": tuple(DATASETS), "backend": backends.names(), "nudging": NUDGINGS,
                   "diode": diode_names(), "device": PRESETS}
        for name, allowed in choices.items():
            if name == "diode" and _is_model_file(self.diode):
                continue  # a characterised clamp: checked by loading it (diode_kind)
            if getattr(self, name) not in allowed:
                bad(name, getattr(self, name), f"use one of {', '.join(map(str, allowed))}"
                    + (", or a characterised clamp's .json" if name == "diode" else ""))
        for name in ("epochs", "batch_size"):
            positive(name, integer=True)
        for name in ("n_train", "n_test", "validation", "workers", "time_steps"):
            positive(name, integer=True, allow_none=True)
        positive("threshold", allow_none=True, allow_zero=True, need="must be volts >= 0")
        if self.spikes not in ("graded", "binary"):
            bad("spikes", self.spikes, "use graded or binary")
        for name in ("beta", "target_amplitude", "input_scale", "tol", "lr_decay"):
            positive(name)
        positive("diode_is", allow_none=True)
        positive("pixel_max", allow_none=True)
        positive("warmup", allow_zero=True, need="must be epochs >= 0 (0: no warm-up)")
        positive("shift", integer=True, allow_zero=True, need="must be a whole number of pixels >= 0 (0: none)")
        positive("deadline", allow_none=True, need="must be seconds > 0 per ngspice analysis, or null (the default)")
        positive("checkpoint_every", allow_none=True, allow_zero=True,
                 need="must be seconds >= 0 (0: after every step) or null")
        self._check_noise()
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            bad("dropout", self.dropout, "must be a fraction in [0, 1) of hidden nodes to ground per sample (0: none)")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) \
                or not 0 <= self.weight_decay < np.inf:
            bad("weight_decay", self.weight_decay, "must be a number >= 0 (0: none)")
        if self.wire is not None and (isinstance(self.wire, bool) or not isinstance(self.wire, (int, float))
                                      or not 0 < self.wire < np.inf):
            bad("wire", self.wire, "must be ohms > 0 per crossbar wire segment")
        if not isinstance(self.momentum, (int, float)) or isinstance(self.momentum, bool) or not 0 <= self.momentum < 1:
            bad("momentum", self.momentum, "must be in [0, 1)")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            bad("seed", self.seed, "must be a non-negative integer")
        hidden = list(self.hidden) if isinstance(self.hidden, (list, tuple)) else None
        if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0 for h in hidden):
            bad("hidden", self.hidden, "must be a non-empty list of positive layer sizes, e.g. [100]")
        if self.lr is not None:
            lr = list(self.lr) if isinstance(self.lr, (list, tuple)) else None
            if (not lr or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0
                              for v in lr)):
                bad("lr", self.lr, "must be a list of learning rates >= 0, one per connection, e.g. [10, 5]")
            if len(lr) not in (1, len(hidden) + 1):
                bad("lr", self.lr, f"needs one value, or one per connection: {len(hidden) + 1} for hidden {hidden} "
                                   "(input side first)")
            if not any(lr):
                bad("lr", self.lr, "all rates are 0, so nothing would train; leave --lr out for the default rule")
        self._check_gain(hidden)
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
        has_is = "i_s" in getattr(DIODE_MODELS.get(self.diode), "__dataclass_fields__", {})
        if self.diode_is is not None and not has_is:
            bad("diode_is", self.diode_is, f"sets a Shockley diode's saturation current; the diode is {self.diode!r} "
                                           "(add --diode shockley, or drop --diode-is)")
        if self.fixed_point is not False:
            bad("fixed_point", self.fixed_point, "the Lava fixed-point models were replaced by the bit-accurate Loihi "
                                                 "path: use --backend loihi (and drop --fixed-point)")
        self._check_backend_support()
        return self

    def _check_noise(self) -> None:
        from eqprop.circuits.noise import CAPACITANCE_RANGE

        c, w = self.noise_capacitance, self.noise_window
        lo, hi = CAPACITANCE_RANGE
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating))
                              or not lo <= c <= hi):
            raise ConfigError(f"config field 'noise_capacitance' = {c!r}: must be {lo:g} to {hi:g} farads per node "
                              "(100 fF is 1e-13), or null for no noise")
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) or not np.isfinite(w) or w < 0:
            raise ConfigError(f"config field 'noise_window' = {w!r}: must be seconds >= 0 (0: one sample)")
        if w and c is None:
            raise ConfigError("--noise-window sets how thermal noise is averaged; give --noise-capacitance too")

    def _check_amplifier(self, spec) -> None:
        from eqprop.circuits import NetworkError, amplifier_model

        if self.amplifier is None:
            return
        if not isinstance(self.amplifier, str):
            raise ConfigError(f"config field 'amplifier' = {self.amplifier!r}: must be a text like 'a0=1e3 rout=100', "
                              "or null for ideal amplifiers")
        try:
            model = amplifier_model(self.amplifier)
        except NetworkError as exc:
            raise ConfigError(str(exc)) from None
        if model.kind not in spec.amplifiers:
            have = [s.name for s in backends.REGISTRY.values() if model.kind in s.amplifiers]
            raise ConfigError(f"the {spec.name} backend settles {', '.join(spec.amplifiers)} amplifiers only, not the "
                              f"{model.describe()}; use --backend {' or '.join(have)}")
        if self.hidden_pairs and not getattr(model, "inverting", False):
            raise ConfigError(f"the {model.describe()} have no inverting form, which differential hidden layers need; "
                              "use --hidden-pairs off, or op-amp macromodels (--amplifier \"a0=...\") or ideal amplifiers")
        if not model.ideal and all(a == 1.0 for a in self.gains()):
            raise ConfigError("--gain 1 leaves the network without amplifiers for --amplifier to model; give a gain")

    def _check_converters(self, spec) -> None:
        if self.converters is None:
            return
        if not spec.converters:
            have = [s.name for s in backends.REGISTRY.values() if s.converters]
            raise ConfigError(f"--converters sets the converters of a co-simulated loop; the {spec.name} backend has none "
                              f"(backends that do: {', '.join(have)})")
        if not isinstance(self.converters, str):
            raise ConfigError(f"config field 'converters' = {self.converters!r}: must be a text like 'bits=10 latency=1', "
                              "or null for ideal converters")  # the backend's check_config parses it

    def _check_gain(self, hidden) -> None:
        """Differential hidden layers and the amplifier gains: filled in from the rules when left out."""
        spec = backends.get(self.backend)
        if not isinstance(self.hidden_pairs, (bool, np.bool_)):
            raise ConfigError(f"config field 'hidden_pairs' = {self.hidden_pairs!r}: must be true, false or null")
        self.hidden_pairs = bool(self.hidden_pairs)
        if self.hidden_pairs and not spec.hidden_pairs:
            have = [s.name for s in backends.REGISTRY.values() if s.hidden_pairs]
            raise ConfigError(f"the {spec.name} backend has single-ended hidden layers only: drop --hidden-pairs on "
                              f"(backends with differential ones: {', '.join(have)})")
        g = self.gain
        values = list(g) if isinstance(g, (list, tuple)) else [g]
        if (not values or any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                              or not np.isfinite(v) or v <= 0 for v in values)):
            raise ConfigError(f"config field 'gain' = {g!r}: must be a positive number, or one per hidden layer")
        if isinstance(g, (list, tuple)) and len(values) != len(hidden):
            raise ConfigError(f"config field 'gain' = {g!r}: needs one value, or one per hidden layer ({len(hidden)} "
                              f"for hidden {hidden})")
        self.gain = [float(v) for v in values] if isinstance(g, (list, tuple)) else float(g)

    def gains(self) -> list:
        """One gain per hidden layer's amplifier (input side first); the rule when ``gain`` is left out."""
        g = default_gains(list(self.hidden), self.differential()) if self.gain is None else self.gain
        return [float(v) for v in g] if isinstance(g, (list, tuple)) else [float(g)] * len(self.hidden)

    def diode_kind(self) -> str:
        """The registered kind of the diode model: its name, or 'table' for a characterised clamp's file (loaded,
        so that a missing or foreign file fails here in one line)."""
        if not _is_model_file(self.diode):
            return self.diode
        from eqprop.circuits import NetworkError, diode_model

        try:
            return diode_model(self.diode).kind
        except NetworkError as exc:
            raise ConfigError(str(exc)) from None

    def _check_backend_support(self) -> None:
        """What the chosen backend can do, from its registry line."""
        spec = backends.get(self.backend)
        kind = self.diode_kind()
        if kind not in spec.diodes:
            raise ConfigError(f"the {spec.name} backend settles {', '.join(spec.diodes)} diodes only, not "
                              f"{self.diode!r}; use --diode {spec.diodes[0]} or another backend")
        if not spec.spiking and (self.threshold is not None or self.time_steps is not None or self.spikes != "graded"):
            spiking = [s.name for s in backends.REGISTRY.values() if s.spiking]
            raise ConfigError(f"--threshold, --spikes and --time-steps set spiking messages; the {spec.name} backend "
                              f"has none (backends that do: {', '.join(spiking)})")
        self._check_amplifier(spec)
        self._check_converters(spec)
        if self.neurons is not None and self.neurons not in spec.neurons:
            have = [f"{s.name}: {', '.join(s.neurons)}" for s in backends.REGISTRY.values() if s.neurons]
            raise ConfigError(f"--neurons {self.neurons} is not a neuron kind of the {spec.name} backend "
                              f"(backends with a choice: {'; '.join(have)})")
        if spec.programs and self.momentum != 0:
            raise ConfigError(f"the {spec.name} backend's learning controller keeps no velocity: use --momentum 0 "
                              f"(got {self.momentum})")
        if spec.programs and self.nudging == "random":
            raise ConfigError(f"the {spec.name} backend's controller sequences a fixed phase order: use --nudging "
                              "centered, positive or negative (got 'random')")
        if spec.onchip and not spec.programs and (self.momentum != 0 or self.nudging != "centered"
                                                  or self.device != "ideal"):
            raise ConfigError(f"the {spec.name} backend's synapses apply plain centered EqProp updates themselves: "
                              f"use --momentum 0 (got {self.momentum}), --nudging centered (got {self.nudging!r}) "
                              f"and --device ideal (got {self.device!r})")
        if self.deadline is not None and not spec.analyses:
            runs = [s.name for s in backends.REGISTRY.values() if s.analyses]
            raise ConfigError(f"--deadline bounds each ngspice analysis; the {spec.name} backend runs none (backends "
                              f"that do: {', '.join(runs)}); leave it out")
        if self.dropout and not spec.dropout:
            have = [s.name for s in backends.REGISTRY.values() if s.dropout]
            raise ConfigError(f"--dropout grounds hidden nodes inside the solver; the {spec.name} backend has no such "
                              f"switches (backends that do: {', '.join(have)}); leave it out")
        if self.wire is not None and not spec.wires:
            have = [s.name for s in backends.REGISTRY.values() if s.wires]
            raise ConfigError(f"--wire lays the network out as crossbars with resistive wires: use --backend "
                              f"{' or '.join(have)} (got {spec.name}), or leave it out")
        if self.weight_decay and spec.onchip:
            raise ConfigError(f"--weight-decay is applied by the host's update; the {spec.name} backend's synapses "
                              "update themselves on chip without it; leave it out")
        if self.cluster and not spec.cluster:
            raise ConfigError(f"--cluster spreads a backend's work over Ray; the {spec.name} backend does not use it "
                              "(use --backend spice, or eqprop sweep --cluster to spread whole runs)")
        try:
            spec.load().check_config(self)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if spec.load().signed and self.device != "ideal":
            raise ConfigError(f"the {spec.name} backend has signed weights, not programmed conductances; "
                              f"--device {self.device} does not apply (leave it out)")

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


def _batch_metrics(pred, y, labels) -> dict:
    """A training batch's mean loss and correct count, from its free-phase predictions."""
    return {"loss": float(0.5 * ((pred - y) ** 2).sum(1).mean()), "correct": int((pred.argmax(1) == labels).sum())}


class EqPropTrainer:
    """Trains any backend with EqProp. Holds the optimiser state so a checkpoint can restore it exactly.

    ``programming``: the model every conductance update passes through; None for signed weights (plain SGD).
    """

    def __init__(self, backend, config: TrainConfig, programming: ProgrammingModel | None, n_classes: int):
        self.backend = backend
        self.config = config
        self.device = programming
        self.n_classes = n_classes
        self.rng = np.random.default_rng(config.seed)
        params = backend.parameters()
        n_conn = len(params) // 2
        self.g_ref = backend.parameter_scales()
        self.velocity = [np.zeros_like(p) for p in params]
        lr = list(config.lr) if config.lr is not None else backend.default_lr(config.hidden)
        if len(lr) == 1:
            lr = lr * n_conn
        if len(lr) != n_conn:
            raise ConfigError(f"lr needs one value per connection ({n_conn}) or a single value, got {len(lr)}")
        self.lr = lr + lr  # weights then biases of each connection share its rate
        self.beta_abs = config.beta * backend.beta_unit()
        self.loss_unit = backend.loss_unit(config)
        self.d2d = [programming.device_gains(p.shape, self.rng) if programming else None for p in params]
        self.thermal = None
        if config.noise_capacitance is not None:
            from eqprop.circuits.noise import ThermalNoise

            self.thermal = ThermalNoise(float(config.noise_capacitance), float(config.noise_window))
        self.epoch = 0
        self.steps = 0  # updates made (the warm-up counts them)
        #: steps over which the rates ramp up: config.warmup epochs, in steps (the training loop sets it from
        #: its batches per epoch; 0: no warm-up)
        self.warmup_steps = 0

    def rate_factor(self) -> float:
        """What multiplies every learning rate at the next step: the per-epoch decay times the warm-up ramp
        ((steps + 1) / warmup_steps until it reaches 1)."""
        factor = self.config.lr_decay ** self.epoch
        if self.warmup_steps and self.steps < self.warmup_steps:
            factor *= (self.steps + 1) / self.warmup_steps
        return factor

    def targets(self, labels) -> np.ndarray:
        return self.backend.targets(labels, self.n_classes, self.config.target_amplitude)

    def step(self, x, labels) -> dict:
        cfg = self.config
        y = self.targets(labels)
        if getattr(self.backend, "onchip", False):  # the backend's synapses update themselves
            decay = self.rate_factor()
            self.steps += 1
            scales = [lr * decay * ref * ref / self.loss_unit / len(x) for lr, ref in zip(self.lr, self.g_ref)]
            out = self.backend.onchip_step(x, y, self.beta_abs, scales)
            if getattr(self.backend, "programs", False):  # its controller requested changes: program them
                pred, deltas = out
                for p, delta, gains in zip(self.backend.parameters(), deltas, self.d2d):
                    if self.device is None:
                        p += delta
                    else:
                        self.device.apply(p, delta, self.rng, gains)
            else:
                pred = out
            self.backend.sync()
            return _batch_metrics(pred, y, labels)
        if getattr(self.backend, "backprop", False):  # the digital reference: its exact gradient, no phases
            pred = self.backend.settle(x).prediction  # before the update, as the phases' free prediction is
            grads, _ = self.backend.gradient(x, y)
            decay = self.rate_factor()
            self.steps += 1
            for p, g, v, ref, lr in zip(self.backend.parameters(), grads, self.velocity, self.g_ref, self.lr):
                self.decay_weights(p, g, ref / self.loss_unit, ref)
                sgd_step(p, g, v, cfg.momentum, ref / self.loss_unit, lr * decay * ref)
            self.backend.sync()
            return _batch_metrics(pred, y, labels)
        if cfg.dropout:  # the same nodes grounded through the sample's free and nudged phases
            masks = self.grounding(len(x))
            with self.backend.network.grounded(masks):
                ph = run_phases(self.backend, x, y, self.beta_abs, cfg.nudging, self.rng)
            free = np.hstack(masks + [np.ones((len(x), self.backend.network.sizes[-1]))])
        else:
            ph = run_phases(self.backend, x, y, self.beta_abs, cfg.nudging, self.rng)
            free = None
        if self.thermal is not None:  # what a measurement of each settled phase reads: the circuit's own noise
            for eq in (ph.free, ph.plus, ph.minus):
                if eq is not None:
                    eq.voltages = eq.voltages + self.thermal.sample(self.backend.network, eq.voltages, self.rng,
                                                                    eq.beta)
                    if free is not None:  # a grounded node reads 0 V
                        eq.voltages *= free
        if self.device is not None and self.device.read_noise:
            for eq in (ph.free, ph.plus, ph.minus):
                if eq is not None:
                    eq.voltages = self.device.read(eq.voltages, self.rng)
        stats, scale = eqprop_statistics(self.backend, ph, paired=True)
        decay = self.rate_factor()
        self.steps += 1
        for p, g, v, ref, lr, gains in zip(self.backend.parameters(), stats, self.velocity, self.g_ref, self.lr,
                                           self.d2d):
            # dimensionless: p = G / g_ref, loss in its unit; g is this step's own array (overwritten)
            g_scale = scale * ref / self.loss_unit
            if isinstance(g, PairedRows):  # the input pairs' - rows formed by the update as it reads them
                if sgd_step_pairs(p, g, v, cfg.momentum, g_scale, lr * decay * ref, self.device, gains,
                                  self.decay_coefficient(g_scale, ref)):
                    continue
                g = g.full()
            self.decay_weights(p, g, g_scale, ref)
            sgd_step(p, g, v, cfg.momentum, g_scale, lr * decay * ref, self.device, self.rng, gains)
        self.backend.sync()
        return _batch_metrics(ph.free.prediction, y, labels)

    def decay_weights(self, p, g, g_scale: float, ref: float) -> None:
        """Adds weight decay to this step's gradient ``g`` (in place): weight_decay x p / ref in the dimensionless
        units that ``g x g_scale`` has."""
        coefficient = self.decay_coefficient(g_scale, ref)
        if coefficient is not None:
            g += coefficient * p

    def decay_coefficient(self, g_scale: float, ref: float) -> float | None:
        """What ``decay_weights`` multiplies p by (None without weight decay)."""
        wd = self.config.weight_decay
        return wd / (ref * g_scale) if wd else None

    def grounding(self, batch: int) -> list:
        """Per hidden layer a (batch, nodes) 0/1 mask: each node grounded (0) with probability ``dropout``, apart
        for every sample."""
        p = self.config.dropout
        return [(self.rng.random((batch, n)) >= p).astype(float) for n in self.backend.network.sizes[1:-1]]

    def epoch_step(self, x, labels, batch: int) -> dict:
        """A whole epoch on a backend that runs it in one go (``epoch_run``: every batch on chip, one rate for
        the epoch, each batch's update at the rate of a full one); the epoch's mean loss and correct count from
        each sample's free-phase prediction."""
        y = self.targets(labels)
        decay = self.rate_factor()
        scales = [lr * decay * ref * ref / self.loss_unit / batch for lr, ref in zip(self.lr, self.g_ref)]
        pred = self.backend.onchip_epoch(x, y, self.beta_abs, scales, batch)
        self.steps += -(-len(x) // batch)
        self.backend.sync()
        return _batch_metrics(pred, y, labels)

    def evaluate(self, x, labels, batch_size: int = 512, each=None) -> dict:
        """Mean loss and accuracy over (x, labels), settled in batches of ``batch_size``; ``each``: called with
        every batch's equilibrium (a caller that reads more of the same settles, ``runs.evaluate_run``)."""
        y = self.targets(labels)
        loss, correct = 0.0, 0
        with self.backend.unchanged():  # nothing is edited while it reads: checked and derived once, not per batch
            for i in range(0, len(x), batch_size):
                eq = self.backend.settle(x[i:i + batch_size])
                if each is not None:
                    each(eq)
                pred = eq.prediction
                loss += float(0.5 * ((pred - y[i:i + batch_size]) ** 2).sum())
                correct += int((pred.argmax(1) == labels[i:i + batch_size]).sum())
        return {"loss": loss / len(x), "accuracy": correct / len(x)}

    def state(self) -> dict:
        return {"velocity": self.velocity, "epoch": self.epoch, "steps": self.steps, "rng": self.rng.bit_generator.state,
                "g_ref": self.g_ref, "d2d": self.d2d, "beta_abs": self.beta_abs}

    def load_state(self, state: dict) -> None:
        self.velocity = [np.array(v) for v in state["velocity"]]
        self.epoch = int(state["epoch"])
        self.steps = int(state.get("steps", 0))  # checkpoints from before the warm-up did not count steps
        self.rng.bit_generator.state = state["rng"]
        self.g_ref = list(state["g_ref"])
        self.d2d = state["d2d"]
        self.beta_abs = float(state["beta_abs"])
