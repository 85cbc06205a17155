"""The backend registry: one line per backend, the only list of backends in the toolkit.

The CLI's choices, ``TrainConfig.validate``, the training loop and ``eqprop compare`` all read it. A
backend's class is imported on first use (``BackendSpec.load``), so PySpice and Lava load only when a
backend that needs them is asked for. Adding a backend: write its module (a class with the
``eqprop.backends.base.Backend`` hooks, usually a ``ResistiveBackend`` subclass) and add its line below.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


class BackendError(ValueError):
    """An unknown backend, or a backend asked for something it cannot do."""


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"
    summary: str
    needs: tuple = ()  # what must be installed: "ngspice", "lava"
    diodes: tuple = ("ideal", "shockley", "pwl")  # diode models it settles ("ideal" is the hard clamp)
    # ("shockley-rs", the diode with series resistance, and "mosfet", a diode-connected transistor: native and
    # spice, whose lines add them)
    cluster: bool = False  # can spread its work over Ray: --cluster
    analyses: bool = False  # runs ngspice analyses, each bounded by --deadline
    onchip: bool = False  # computes its own updates (no host arithmetic)
    programs: bool = False  # onchip, but requests changes that the host's device model programs (--device)
    compare_samples: int = 0  # eqprop compare trains and tests it on this many images only (0: all): slow backends
    in_demo: bool = True  # part of `eqprop demo`'s closing compare (minutes, not an hour)
    wires: bool = False  # lays the network out as crossbars with resistive wires (--wire): another circuit than the
    # one drawn, so `eqprop compare` and the demo leave it out unless named
    spiking: bool = False  # spiking messages: --threshold, --spikes, --time-steps
    hidden_pairs: bool = False  # settles differential hidden layers (--hidden-pairs; the default for deep networks)
    converters: bool = False  # a co-simulated loop whose ADC and DAC --converters sets
    neurons: tuple = ()  # the neuron kinds --neurons picks from (the first is the default); () : no choice
    dropout: bool = False  # grounds hidden nodes per sample in its solves (LayeredNetwork.grounded): --dropout
    amplifiers: tuple = ("ideal",)  # amplifier models it settles (--amplifier; "opamp": the op-amp macromodel, "table": a characterised transistor-level one)

    def load(self):
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


REGISTRY: dict = {}


def register(spec: BackendSpec) -> BackendSpec:
    if spec.name in REGISTRY:
        raise BackendError(f"backend {spec.name!r} is registered twice")
    REGISTRY[spec.name] = spec
    return spec


def names() -> tuple:
    return tuple(REGISTRY)


def get(name: str) -> BackendSpec:
    if name not in REGISTRY:
        raise BackendError(f"unknown backend {name!r}; use one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


register(BackendSpec("native", "eqprop.backends.native:NativeBackend",
                     "the native solver: exact block coordinate descent in numpy (the circuit's digital twin)",
                     hidden_pairs=True, amplifiers=("ideal", "opamp", "table"), dropout=True,
                     diodes=("ideal", "shockley", "pwl", "shockley-rs", "mosfet", "table")))
register(BackendSpec("wired", "eqprop.backends.wired:WiredBackend",
                     "the network as crossbars with resistive row and column wires (--wire OHMS per segment), settled "
                     "by the sparse graph solver and trained in situ: each conductance's rule reads its own crossing",
                     hidden_pairs=True, in_demo=False, wires=True))
register(BackendSpec("spice", "eqprop.backends.spice:SpiceBackend",
                     "every phase an ngspice operating point (worker processes, or Ray actors with --cluster)",
                     needs=("ngspice",), cluster=True, analyses=True, hidden_pairs=True, amplifiers=("ideal", "opamp", "table"),
                     diodes=("ideal", "shockley", "pwl", "shockley-rs", "mosfet", "table")))
register(BackendSpec("lava", "eqprop.backends.lava:LavaBackend",
                     "every phase a run of Lava processes on Lava's CPU simulator: float models, a fast simulation "
                     "of the message passing (delayed Jacobi); for a chip's arithmetic use loihi",
                     needs=("lava",), hidden_pairs=True))
register(BackendSpec("lava-onchip", "eqprop.backends.lava_onchip:LavaOnchipBackend",
                     "on-chip training on Lava: every conductance update made by the learning engine (LearningDense, "
                     "tag-and-apply EqProp rule) during the phases; centered nudging, no momentum",
                     needs=("lava",), onchip=True, in_demo=False))
register(BackendSpec("lava-onchip-int", "eqprop.backends.lava_onchip_int:LavaOnchipIntBackend",
                     "on-chip training on Lava's bit-approximate learning engine: 8-bit weights, 7-bit traces and "
                     "third factors, stochastic rounding; integer EqProp rule, copies bit-identical; power-of-two gains",
                     needs=("lava",), diodes=("ideal", "pwl"), onchip=True, compare_samples=160, in_demo=False,
                     neurons=("float", "integer")))
register(BackendSpec("lava-chip", "eqprop.backends.lava_chip:LavaChipBackend",
                     "one chip end to end: integer neurons (leak measured on chip) and Lava's bit-approximate learning "
                     "engine, a whole epoch in one Lava run; the host loads samples and reads the synapses back",
                     needs=("lava",), diodes=("ideal",), onchip=True, compare_samples=160, in_demo=False))
register(BackendSpec("lava-chip-emu", "eqprop.backends.lava_chip:LavaChipEmulatorBackend",
                     "lava-chip on the host emulator: the same neurons and the bit-approximate engine's arithmetic, "
                     "stepped in one process, bit-exact with the Lava run and about 8x faster; evaluation on the "
                     "native solver", needs=("lava",), diodes=("ideal",), onchip=True, compare_samples=160,
                     in_demo=False))
register(BackendSpec("loihi", "eqprop.backends.loihi:LoihiBackend",
                     "the bit-accurate Loihi path: integer neurons and Lava's bit-accurate Dense, sigma-delta or "
                     "binary spikes (batched emulator, checked bit for bit against the Lava run)",
                     needs=("lava",), diodes=("ideal", "pwl"), spiking=True))
register(BackendSpec("cosim", "eqprop.backends.cosim:CosimBackend",
                     "mixed-signal co-simulation: the analog core in ngspice (transients with node capacitances), "
                     "its periphery in Lava (ADC, nudging DACs, integer nudging and learning controllers) in lockstep",
                     needs=("ngspice", "lava"), onchip=True, programs=True, converters=True, compare_samples=64,
                     in_demo=False))
register(BackendSpec("backprop", "eqprop.backends.backprop:BackpropBackend",
                     "the same architecture trained by backpropagation: a feed-forward network with the circuit's "
                     "layer sizes, +x/-x inputs, clamp to the rails, output pairs and targets; signed weights, exact "
                     "gradients (what the physics and EqProp cost)",
                     diodes=("ideal",)))
register(BackendSpec("hopfield", "eqprop.backends.hopfield:HopfieldBackend",
                     "the digital reference: the continuous Hopfield network of Scellier & Bengio (2017)",
                     diodes=("ideal",)))
