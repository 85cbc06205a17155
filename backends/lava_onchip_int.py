"""On-chip training on Lava's bit-approximate learning engine (``PyLearningDenseModelBitApproximate``):
8-bit synaptic mantissas with per-copy exponents, 7-bit traces and third factors, the tag accumulated
with 7 fractional bits and stochastically rounded, the integer rule and epilogue of
``neuromorphic.onchip.map``. The host programs the conductances once (the first batch fixes the integer
mapping: exponents, current units and code LSBs, the latter from that batch's native phase differences,
as one would set a converter's range) and afterwards only loads samples, fixes beta and reads the
mantissas back; it computes no update. Both copies of a conductance stay bit-identical, or within
``COPY_TOLERANCE`` (checked after every batch; see that constant)."""
from __future__ import annotations

import warnings

import numpy as np

from eqprop.circuits.energy import node_conductance, readout

from .lava_onchip import LavaOnchipBackend
from .native import NativeBackend

# The two copies of a conductance may end a batch this many mantissa LSBs apart (issue 16: "equal to within
# one weight LSB"). Both are programmed from the forward copy's mantissas at the start of every batch (each
# batch is one Lava run), so a difference is one batch's applied update, never accumulated.
COPY_TOLERANCE = 1


def program_network(net, x, y, beta: float):
    """The integer mapping (``onchip.map.IntOnchipMap``) from the network as it is and one batch's native
    phases; the network's conductances (in place) become what the 8-bit mantissas hold."""
    from eqprop.neuromorphic.loihi.map import v_bound
    from eqprop.neuromorphic.onchip.map import build_map, check_network, ranges_from_phases

    check_network(net)
    sources = net.encode_inputs(x)
    native = NativeBackend(net.copy(), tol=1e-10)
    free = native.settle(x)
    plus, minus = (native.settle(x, y, b, init=free) for b in (beta, -beta))
    delta, sigma, stat = ranges_from_phases(net, sources, plus.layers, minus.layers)
    v_in = max(float(np.abs(sources).max(initial=0.0)), 1.0)
    m = build_map(net, v_in, [v_bound(c, v_in) for c in net.neurons], delta, sigma, stat)
    mant = m.mantissas(net)
    w, b = m.conductances(net, [f[0] for f in mant["forward"]], [f[0] for f in mant["bias"]])
    for p, new in zip(net.weights + net.biases, w + b):
        p[...] = new
    m.g_max = [float(t.max()) for t in node_conductance(net)]  # fixes the integer neurons' steps (integer_neurons)
    return m


class LavaOnchipIntBackend(LavaOnchipBackend):
    name = "lava-onchip-int"

    def __init__(self, network, steps: int = 20, seed: int = 0, neurons: str = "float", **kw):
        super().__init__(network, steps=steps, **kw)
        if neurons not in ("float", "integer"):
            raise ValueError(f"neurons must be 'float' or 'integer', got {neurons!r}")
        if neurons == "integer":
            from eqprop.neuromorphic.onchip.map import check_integer_neurons

            check_integer_neurons(network)
        self.neurons = neurons
        self.map = None
        self.seed = int(seed)
        self.batches = 0
        self.mismatched_batches = 0  # batches whose two copies came COPY_TOLERANCE LSB apart or less

    def onchip_step(self, x, y, beta: float, scales) -> np.ndarray:
        net = self.network
        x = net.check_inputs(x)
        y = net.check_targets(y, x.shape[0])
        if self.map is None:
            self.map = program_network(net, x, y, beta)
        before = self.map.mantissas(net)  # for the copy warning: the mantissas this batch starts from
        r = self.session.onchip_train(net, net.encode_inputs(x), y, beta, scales, x.shape[0], self.steps,
                                      int_map=self.map, seed=self.seed * 100003 + self.batches, neurons=self.neurons)
        self.batches += 1
        if r["copy_mismatch"] > COPY_TOLERANCE:
            from eqprop.neuromorphic import LavaError

            raise LavaError(f"the forward and backward copies of a conductance differ by {r['copy_mismatch']:g} LSB "
                            f"after batch {self.batches} of this backend, more than the {COPY_TOLERANCE} LSB allowed: "
                            "the bit-approximate engine lost their symmetry, so training stops here (see the "
                            "docs/onchip.md, the bit-approximate engine)")
        if r["copy_mismatch"]:
            self.mismatched_batches += 1
            warnings.warn(f"lava-onchip-int batch {self.batches}: the two copies of a conductance came "
                          f"{r['copy_mismatch']:g} LSB apart in this batch's applied update (within the "
                          f"{COPY_TOLERANCE} LSB allowed); the next batch programs both from the forward copy"
                          f"{_where(r, before)}", stacklevel=2)
        for p, new in zip(net.weights + net.biases, r["weights"] + r["biases"]):
            p[...] = new
        self.copy_mismatch = max(self.copy_mismatch, r["copy_mismatch"])
        return readout(net, r["free_out"])

    def state(self) -> dict:
        """The integer mapping fixed by the run's first batch and the batch count (each batch's rounding seed
        derives from it): a resumed run keeps both, as a chip keeps its converters' ranges."""
        from dataclasses import asdict

        return {"batches": self.batches, "mismatched_batches": self.mismatched_batches,
                "map": None if self.map is None else _plain(asdict(self.map))}

    def load_state(self, state: dict) -> None:
        from eqprop.neuromorphic.onchip.map import IntOnchipMap

        self.batches = int(state.get("batches", 0))
        self.mismatched_batches = int(state.get("mismatched_batches", 0))
        self.map = IntOnchipMap(**state["map"]) if state.get("map") else None

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.neurons == "integer" and cfg.diode_kind() != "ideal":
            raise ValueError(f"integer on-chip neurons clamp with ideal diodes only, not --diode {cfg.diode}: use "
                             "--diode ideal or --neurons float")
        for a in cfg.gains():
            k = np.log2(a) if a > 0 else 0.5
            if k != np.rint(k):
                raise ValueError(f"the {cls.name} backend keeps two integer copies of each conductance (a G and G / a) "
                                 f"equal only for power-of-two gains; got --gain {a:g}: use --gain 2, 4 or 8")

    @classmethod
    def from_config(cls, network, cfg) -> "LavaOnchipIntBackend":
        return cls(network, tol=cfg.tol, seed=cfg.seed, neurons=cfg.neurons or "float")


def _plain(value):
    """numpy scalars and tuples as JSON's ints, floats and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _where(r, before) -> str:
    """Which synapses the copies disagree on, with both mantissas and the one they started the batch from."""
    mant = r.get("mantissas")
    if not mant:
        return ""
    out = []
    for c in range(1, len(mant["forward"])):
        fwd, bwd, start = mant["forward"][c], mant["backward"][c - 1].T, before["forward"][c][0]
        for post, pre in np.argwhere(fwd != bwd)[:3]:
            out.append(f"connection {c}, pre {pre} -> post {post}: forward {fwd[post, pre]}, backward "
                       f"{bwd[post, pre]}, both {start[post, pre]} before the batch")
    return " (" + "; ".join(out) + ")" if out else ""
