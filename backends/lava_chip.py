"""One chip, end to end: integer neurons and Lava's bit-approximate learning engine, a whole epoch in one Lava run.

The training loop hands this backend an epoch (every sample in its order, the targets, the batch size and the
epoch's rates); one Lava run then plays every sample's calibration, free, +beta and -beta phases and learning
epilogue, and every batch's apply step, with integer microcode neurons (``onchip.network.integer_neurons``: the
leak measured on chip, the node integrated in voltage LSBs) and the integer EqProp rule on Lava's
``PyLearningDenseModelBitApproximate``. Between the batches of an epoch the host does nothing: no arithmetic
on weights, no reprogramming of copies, no rate scaling.

What the host does, once per epoch (one run): load the samples and targets, fix beta and the schedule, and set
the rule's exponents from the epoch's rate (``onchip.map.set_rates``: the rate schedule goes through the rule);
after the run it reads both copies' mantissas back. The next run loads each copy as the last one left it, so
the forward and backward copies are never rebuilt from each other: a difference between them would persist
and is compared after every epoch (``copy_mismatch``, ``mismatched_synapses``; more than ``COPY_TOLERANCE``
stops the run). The integer mapping (exponents, units, code LSBs, the neurons' steps) is fixed by the first
epoch's first batch, as one sets a converter's range.

The last batch of an epoch may be short: it applies the sum of its samples' updates at the rate of a full
batch (a rate per batch, not per sample, is what the rule holds). Momentum, warm-up ramps within an epoch and
mid-epoch checkpoints are not what a chip running an epoch alone can do, and are refused or skipped.
"""
from __future__ import annotations

import warnings

import numpy as np

from eqprop.circuits.energy import readout

from .lava_onchip_int import COPY_TOLERANCE, LavaOnchipIntBackend, program_network

#: seconds allowed per sample of a run (about 0.7 s on a 2-core host), on top of the session's timeout
SECONDS_PER_SAMPLE = 10.0


class LavaChipBackend(LavaOnchipIntBackend):
    name = "lava-chip"
    epoch_run = True  # the training loop hands it whole epochs (``onchip_epoch``)

    def __init__(self, network, steps: int = 20, seed: int = 0, **kw):
        super().__init__(network, steps=steps, seed=seed, neurons="integer", **kw)
        self.backward = None  # the backward copies' mantissas as the last run left them
        self.epochs = 0
        self.mismatched_synapses = 0

    def onchip_step(self, x, y, beta: float, scales) -> np.ndarray:
        """One batch: an epoch of one batch (the loop hands this backend whole epochs)."""
        return self.onchip_epoch(x, y, beta, scales, len(x))

    def onchip_epoch(self, x, y, beta: float, scales, batch: int) -> np.ndarray:
        """Every sample of ``x`` in one Lava run, an update applied on chip after every ``batch`` samples;
        returns the free-phase predictions of every sample (each made with the conductances of its batch)."""
        net = self.network
        x = net.check_inputs(x)
        y = net.check_targets(y, x.shape[0])
        if not (isinstance(batch, (int, np.integer)) and batch > 0):
            raise ValueError(f"batch must be a positive number of samples, got {batch!r}")
        if self.map is None:
            self.map = program_network(net, x[:batch], y[:batch], beta)
        r = self._train(net, net.encode_inputs(x), y, beta, scales, int(batch), self.seed * 100003 + self.batches)
        self.batches += -(-len(x) // int(batch))
        self.epochs += 1
        mant = r["mantissas"]
        worst = int(r["copy_mismatch"])  # the largest |backward - forward| of any synapse, in LSB
        count = sum(int(np.count_nonzero(b != f.T)) for b, f in zip(mant["backward"], mant["forward"][1:]))
        self.copy_mismatch = max(self.copy_mismatch, float(worst))
        self.mismatched_synapses = max(self.mismatched_synapses, count)
        if worst > COPY_TOLERANCE:
            from eqprop.neuromorphic import LavaError

            raise LavaError(f"after run {self.epochs} of this backend {count} synapses' forward and backward copies "
                            f"differ, by up to {worst} LSB (more than the {COPY_TOLERANCE} allowed): the engine lost "
                            "their symmetry, so training stops here (docs/onchip.md, the copies)")
        if count:
            warnings.warn(f"lava-chip run {self.epochs}: {count} synapses' two copies are {worst} LSB apart (kept as "
                          "they are: the next run loads each copy as this one left it)", stacklevel=2)
        self.backward = [np.asarray(b, dtype=np.int64) for b in mant["backward"]]
        for p, new in zip(net.weights + net.biases, r["weights"] + r["biases"]):
            p[...] = new  # what the forward copies hold, for evaluation and checkpoints
        return readout(net, r["free_out"])

    def _train(self, net, sources, y, beta: float, scales, batch: int, seed: int) -> dict:
        """One run of the epoch's samples (``onchip.network.OnchipTraining``), here on Lava."""
        return self.session.onchip_train(net, sources, y, beta, scales, batch, self.steps, int_map=self.map, seed=seed,
                                         neurons="integer", backward=self.backward,
                                         timeout=self.session.timeout + SECONDS_PER_SAMPLE * len(sources))

    def state(self) -> dict:
        out = super().state()
        out.update(epochs=self.epochs, mismatched_synapses=self.mismatched_synapses,
                   backward=None if self.backward is None else [b.tolist() for b in self.backward])
        return out

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.epochs = int(state.get("epochs", 0))
        self.mismatched_synapses = int(state.get("mismatched_synapses", 0))
        back = state.get("backward")
        self.backward = None if back is None else [np.asarray(b, dtype=np.int64) for b in back]

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.warmup:
            raise ValueError(f"the {cls.name} backend runs a whole epoch on chip at one rate: a warm-up ramps the "
                             f"rate batch by batch; use --warmup 0 (got {cfg.warmup:g})")

    @classmethod
    def from_config(cls, network, cfg) -> "LavaChipBackend":
        return cls(network, tol=cfg.tol, seed=cfg.seed)


class LavaChipEmulatorBackend(LavaChipBackend):
    """``lava-chip`` on the host emulator (``neuromorphic.onchip.emulator``): the same run, stepped in lockstep in
    this process with the same neuron and source models and the bit-approximate engine's arithmetic written
    out, bit-exact with the Lava run (its mantissas, tags and free-phase outputs; tests/test_onchip_emulator.py
    and ``benchmarks/chip_emulator.py``) and without Lava's runtime. Evaluation settles the learned conductances
    with the native solver (``lava-chip`` settles them on Lava's float models: the same equilibrium)."""

    name = "lava-chip-emu"

    def __init__(self, network, steps: int = 20, seed: int = 0, **kw):
        super().__init__(network, steps=steps, seed=seed, **kw)
        from .native import NativeBackend

        self.native = NativeBackend(network, tol=self.tol)
        self.activity = None  # what the last epoch's run counted (``chip_figures``), and over how many samples
        self.samples_last = 0

    def _train(self, net, sources, y, beta: float, scales, batch: int, seed: int) -> dict:
        import copy

        from eqprop.neuromorphic.session import _checked_samples, prepare_lava_import

        prepare_lava_import("the one-chip emulator")
        from eqprop.neuromorphic.onchip.network import OnchipTraining

        sources, y = _checked_samples(net, sources, y)
        self.samples_last = len(sources)
        # a copy of the network and of the mapping, as the Lava run's child process gets them: the run sets the
        # epoch's rates on its mapping, which must not carry over to the next epoch
        r = OnchipTraining(net.copy(), sources, y, float(beta), [float(s) for s in scales], int(batch), self.steps,
                           1.0, copy.deepcopy(self.map), int(seed), False, "integer", self.backward).emulate()
        self.activity = r["activity"]
        return r

    def chip_figures(self, cores: int = 1) -> dict:
        """Energy (nJ) and time (us) per training sample and per inference on Loihi, (min, max), from what the last
        epoch's emulated run counted (``neuromorphic.loihi.energy.estimate``: Loihi 1's published figures)."""
        from eqprop.neuromorphic.loihi.energy import estimate

        a, n = self.activity, self.samples_last
        if a is None:
            raise ValueError("no epoch has run on this backend yet: the counts come from an emulated epoch")
        out = {}
        for what, counts in (("training_sample", a), ("inference", a["inference"])):
            k = {key: counts[key] / n for key in ("messages", "synops", "neuron_updates", "synapse_updates", "steps")}
            out[what] = {**k, **estimate(k["messages"], k["synops"], k["neuron_updates"], k["synapse_updates"],
                                         k["steps"], cores=cores)}
        return out

    def onchip_epoch(self, x, y, beta: float, scales, batch: int) -> np.ndarray:
        out = super().onchip_epoch(x, y, beta, scales, batch)
        self.native.sync()
        return out

    def settle(self, x, y=None, beta=0.0, init=None):
        return self.native.settle(x, y, beta, init)

    def sync(self) -> None:
        self.native.sync()

    def close(self) -> None:
        self.native.close()
        super().close()
