"""What a backend is: the settle/statistics protocol the learning layer sees, plus the hooks that let
one training loop, one checkpoint format and one compare serve every backend.

The learning layer calls ``settle(x, y, beta, init)``, reads ``parameters()`` and takes
``local_statistics(eq)`` (dE/dtheta summed over the batch, from each device's own drop). The class-level
hooks say how a backend's network is built from a config, saved and loaded, what its targets look like,
and in which units its parameters learn. ``ResistiveBackend`` implements them once for every backend
that settles a resistive ``LayeredNetwork`` (native, ngspice, Lava).
"""
from __future__ import annotations

import contextlib

import numpy as np

from eqprop.circuits import DIODE_MODELS, Equilibrium, LayeredNetwork, diode_model, layered
from eqprop.circuits.energy import conductance_statistics, node_conductance, statistics_difference
from eqprop.circuits.errors import NetworkError
from eqprop.circuits.gradient import resistive_exact_gradient
from eqprop.circuits.serialize import network_from_data, network_to_data


class Backend:
    """Base of every backend. Subclasses implement ``settle``, ``parameters``, ``local_statistics`` and
    the class hooks below; ``sync`` and ``close`` default to nothing."""

    name = ""
    #: the parameters are signed weights (plain SGD), not conductances programmed through a device model
    signed = False
    #: the model family: backends of one family settle the same network and are compared voltage for voltage
    family = ""
    #: config fields this backend trains best with when the user did not set them (see TrainConfig.resolve)
    defaults: dict = {}

    # --- the protocol -------------------------------------------------------------------------------
    def settle(self, x, y=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        raise NotImplementedError

    def parameters(self) -> list:
        raise NotImplementedError

    def local_statistics(self, eq: Equilibrium) -> list:
        raise NotImplementedError

    def statistics_difference(self, hi: Equilibrium, lo: Equilibrium) -> list:
        """local_statistics(hi) - local_statistics(lo): EqProp's numerator (a backend may compute it directly)."""
        return [a - b for a, b in zip(self.local_statistics(hi), self.local_statistics(lo))]

    @property
    def cost_weight(self) -> float:
        """kappa_L: the energy weight of the output layer (the nudge enters the energy as kappa_L beta C)."""
        return 1.0

    def sync(self) -> None:
        """Called after the parameters changed (a simulator reloads them)."""

    def unchanged(self):
        """Context for a block in which the parameters are not edited (the phases of a training step): a
        backend may check them and derive what its solves need once for the block. Default: nothing."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Releases simulators and processes; the backend cannot be used afterwards."""

    def state(self) -> dict:
        """What the backend itself must carry over a resume to continue as an uninterrupted run would (JSON
        types; saved in the checkpoint): {} for a backend whose state is its network."""
        return {}

    def load_state(self, state: dict) -> None:
        """Restores ``state()`` from a checkpoint; ``state`` is {} for checkpoints that hold none."""

    def physical_figures(self, x, capacitance: float = 1e-12) -> dict:
        """Figures only this backend can give for inputs x (power, energy, messages; ``capacitance``: farads
        per node where settling time matters); {} if none."""
        return {}

    # --- hooks for the training loop ----------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg) -> None:
        """Raises ValueError naming a config this backend cannot run (before any file is written)."""

    @classmethod
    def from_config(cls, network, cfg) -> "Backend":
        raise NotImplementedError

    @classmethod
    def build_network(cls, cfg, n_features: int, n_classes: int):
        raise NotImplementedError

    @classmethod
    def network_to_data(cls, network) -> tuple:
        """(JSON-able meta, named arrays)."""
        raise NotImplementedError

    @classmethod
    def network_from_data(cls, meta: dict, arrays):
        raise NotImplementedError

    @classmethod
    def default_lr(cls, hidden) -> list:
        """Learning rate per connection (hidden layers + 1, input side first) when the user gives none."""
        raise NotImplementedError

    @staticmethod
    def targets(labels, n_classes: int, amplitude: float) -> np.ndarray:
        raise NotImplementedError

    def parameter_scales(self) -> list:
        """The unit each parameter learns in (learning rates are relative to it); 1 for plain weights."""
        return [1.0] * len(self.parameters())

    def loss_unit(self, cfg) -> float:
        """The loss is counted in this unit, so learning rates do not depend on the target scale."""
        return 1.0

    def beta_unit(self) -> float:
        """``beta`` in the config is relative to this (an output node's conductance for circuits)."""
        return 1.0

    def exact_gradient(self, free: Equilibrium, y) -> tuple:
        """(d mean loss / d parameter, mean loss) by implicit differentiation at a free equilibrium."""
        raise NotImplementedError


class ResistiveBackend(Backend):
    """Every backend that settles a resistive LayeredNetwork: its parameters are ``self.network``'s
    conductances, its statistics the squared drops across them, from whatever voltages it settled to."""

    family = "resistive"
    network: LayeredNetwork

    def parameters(self) -> list:
        return list(self.network.weights) + list(self.network.biases)

    @property
    def cost_weight(self) -> float:
        return float(self.network.energy_weights[-1])

    def local_statistics(self, eq: Equilibrium) -> list:
        return conductance_statistics(self.network, self.network.encode_inputs(eq.inputs), eq.layers)

    def statistics_difference(self, hi: Equilibrium, lo: Equilibrium, paired: bool = False) -> list:
        """``paired``: an input connection of +x/-x pairs may come as ``circuits.energy.PairedRows``."""
        if hi.inputs is not lo.inputs and (hi.inputs.shape != lo.inputs.shape
                                           or not np.array_equal(hi.inputs, lo.inputs)):
            return super().statistics_difference(hi, lo)
        # with input pairs the features serve as the sources (their -x half is never read); the settle checked them
        net = self.network
        sources = net.check_inputs(hi.inputs, finite=False) if net.input_pairs else net.encode_inputs(hi.inputs)
        return statistics_difference(net, sources, hi.layers, lo.layers, paired=paired)

    statistics_difference.pairs = True  # takes paired= (``learning.eqprop.eqprop_statistics``); an override does not

    def sync(self) -> None:
        self.network.validate()

    def unchanged(self):
        return self.network.unchanged()

    @classmethod
    def build_network(cls, cfg, n_features: int, n_classes: int) -> LayeredNetwork:
        """Kendall et al. (2020): +x/-x sources, hidden layers of diode-clamped nodes, output pairs."""
        sizes = [2 * n_features] + list(cfg.hidden) + [2 * n_classes]
        return layered(sizes, diode=diode_from_config(cfg), rails=cfg.rails, gain=cfg.gains(), g_range=cfg.g_range,
                       hidden_pairs=cfg.differential(), amplifier=getattr(cfg, "amplifier", None), seed=cfg.seed)

    @classmethod
    def network_to_data(cls, network) -> tuple:
        return network_to_data(network)

    @classmethod
    def network_from_data(cls, meta, arrays) -> LayeredNetwork:
        return network_from_data(meta, arrays)

    @staticmethod
    def targets(labels, n_classes: int, amplitude: float) -> np.ndarray:
        """+amplitude for the true class's output pair, -amplitude for the others."""
        t = np.full((len(labels), n_classes), -amplitude)
        t[np.arange(len(labels)), labels] = amplitude
        return t

    #: learning rates at 100 hidden units, input side first (then every later connection)
    BASE_LR = (10.0, 5.0)

    @classmethod
    def default_lr(cls, hidden) -> list:
        """The rate rule: (10, 5, 5, ...) times min(1, smallest hidden layer / 100). Below 100 hidden units
        the fixed rates overshoot (measured on digits: 16 hidden stays at chance with (10, 5), trains to 87%
        in 5 epochs with the rule); above, the rates hold (the units already scale with the fan-in)."""
        scale = min(1.0, min(hidden) / 100.0)
        return [cls.BASE_LR[0] * scale] + [cls.BASE_LR[1] * scale] * len(hidden)

    def parameter_scales(self) -> list:
        """Each array's mean initial conductance times sqrt(fan_in / 100) (rates are quoted for 100 inputs)."""
        params = self.parameters()
        n = len(params) // 2
        fan_in = [p.shape[0] for p in params[:n]] * 2  # biases share their connection's fan-in
        return [(float(p.mean()) if p.mean() > 0 else 1.0) * np.sqrt(f / 100.0) for p, f in zip(params, fan_in)]

    def loss_unit(self, cfg) -> float:
        return cfg.target_amplitude ** 2

    def beta_unit(self) -> float:
        return mean_output_conductance(self.network)

    def exact_gradient(self, free, y) -> tuple:
        return resistive_exact_gradient(self.network, free, y)


def mean_output_conductance(net: LayeredNetwork) -> float:
    return float(node_conductance(net)[-1].mean())


def diode_from_config(cfg):
    """The diode model a config names; --diode-is sets a Shockley diode's saturation current."""
    if isinstance(cfg.diode, str) and cfg.diode.strip().endswith(".json"):  # a characterised clamp
        return diode_model(cfg.diode.strip())
    cls = DIODE_MODELS[cfg.diode]
    if cfg.diode_is is not None:
        return cls(i_s=cfg.diode_is)
    return cls()


# --- the digital models' signed layers (the Hopfield reference and the feed-forward backprop reference) ---------

def check_layers(sizes, weights, biases) -> None:
    """Layer l's weights are (sizes[l], sizes[l + 1]), its biases (sizes[l + 1],), all finite."""
    for l, (w, b) in enumerate(zip(weights, biases)):
        if w.shape != (sizes[l], sizes[l + 1]) or b.shape != (sizes[l + 1],):
            raise NetworkError(f"layer {l}: weights {w.shape} / biases {b.shape} do not fit sizes {sizes}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise NetworkError(f"layer {l}: weights or biases hold NaN/inf")


def layer_arrays(network) -> dict:
    """The checkpoint arrays of a network of signed layers: weights_l, biases_l."""
    arrays = {f"weights_{l}": w for l, w in enumerate(network.weights)}
    arrays.update({f"biases_{l}": b for l, b in enumerate(network.biases)})
    return arrays


def layers_from_arrays(arrays, n_layers: int, what: str) -> tuple:
    """(weights, biases) from ``layer_arrays``' form; a missing array is named in one line."""
    try:
        return ([np.array(arrays[f"weights_{l}"]) for l in range(n_layers)],
                [np.array(arrays[f"biases_{l}"]) for l in range(n_layers)])
    except KeyError as e:
        raise NetworkError(f"saved {what} lacks array {e}") from None
