"""Which part of the bit-approximate engine's arithmetic costs accuracy? Host EqProp with one part at a time.

    python benchmarks/onchip_int_emulation.py [--seeds 0 1 2 3 4 5] [--epochs 10] [--n-train 320]
                                              [--fixed-r 0.1 0.5 0.9]

The training is ``eqprop train --dataset digits --momentum 0 --n-train 320`` (the runs the README compares
``--backend lava-onchip-int`` with), with two pieces of the integer path emulated on the host, each on or off:

- ``rounding``: the update enters 8-bit mantissas (0..255, LSB = the array's largest conductance / 128 at
  the start, the network first programmed to them, as ``program_network`` does): ``shared`` stochastic
  rounding with one random number per array and batch (Lava's ``ConnVarRandom`` draws one per step for a
  whole synapse array), ``shared-all`` (one number per batch for every array: Lava seeds every synapse
  process alike), ``independent`` (one per synapse), ``nearest``, ``fixed-R`` (the same number R in every
  batch: what Lava 0.10 did, whose rounding stream restarts from seed 2 in every run, and each batch is
  a run; ``--fixed-r``), or ``float`` (no mantissas);
- ``codes``: each sample's phase differences and sums, and the products P = d s, reach the statistics as
  7-bit stochastic codes the way the integer rule's epilogue sends them (``onchip.map``), with code LSBs
  fixed from the first batch (``fixed``, as on chip), recalibrated every batch (``recal``), or ``float``.

Everything else is host EqProp (float node voltages, exact leak, no tag saturation, no product floors).
Each row: test accuracy after the last epoch, mean over the seeds, and the mean of the last three epochs.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import contextmanager

import numpy as np

from eqprop.backends import base
from eqprop.learning import programming
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig

CODE_MAX = 63
MANTISSA_START, MANTISSA_MAX = 128, 255
ROWS = [("float", "float"), ("float", "shared"), ("float", "shared-all"), ("float", "independent"),
        ("float", "nearest"), ("fixed", "shared"), ("recal", "shared")]


def _lsb(top: float) -> float:
    return 2.0 ** np.ceil(np.log2(max(top, 1e-12) / CODE_MAX))


def _code(x, lsb, rng):
    y = x / lsb
    f = np.floor(y)
    return np.clip(f + (rng.random(y.shape) < (y - f)), -CODE_MAX, CODE_MAX)


def coded_statistics(codes: str, rng):
    """statistics_difference(hi, lo) of a ResistiveBackend with the phases' differences and sums coded."""
    state = {}

    def stats(self, hi, lo):
        net = self.network
        vb, kappa = float(net.bias_voltage), net.energy_weights
        src = net.encode_inputs(hi.inputs)
        parts = []
        for c in range(net.n_connections):
            a = float(net.gains[c])
            dv, sv = hi.layers[c] - lo.layers[c], hi.layers[c] + lo.layers[c]
            if c == 0:  # the sources are the same in both phases
                du, su = np.zeros_like(src), 2.0 * a * src
            else:
                du = a * (net.driven(c, hi.layers[c - 1]) - net.driven(c, lo.layers[c - 1]))
                su = a * (net.driven(c, hi.layers[c - 1]) + net.driven(c, lo.layers[c - 1]))
            parts.append((du, su, dv, sv))
        if codes == "recal" or "lsb" not in state:
            state["lsb"] = [(_lsb(max(np.abs(du).max(), np.abs(dv).max())), _lsb(max(np.abs(su).max(), np.abs(sv).max())),
                             _lsb(np.abs(dv).max()), _lsb(max(2 * abs(vb), np.abs(sv).max()))) for du, su, dv, sv in parts]
        weights, biases = [], []
        for c, (du, su, dv, sv) in enumerate(parts):
            sd, ss, bsd, bss = state["lsb"][c]
            p = 64.0 * sd * ss
            pu = _code(du * su, p, rng).sum(0) * p
            pv = _code(dv * sv, p, rng).sum(0) * p
            cross = sd * ss * (_code(du, sd, rng).T @ _code(sv, ss, rng) + _code(su, ss, rng).T @ _code(dv, sd, rng))
            weights.append(0.5 * kappa[c] * (pu[:, None] - cross + pv[None, :]))
            pb = 64.0 * bsd * bss
            xdv = _code(dv, bsd, rng).sum(0) * bsd
            pvb = _code(dv * sv, pb, rng).sum(0) * pb
            biases.append(0.5 * kappa[c] * np.stack([-2.0 * vb * xdv + pvb, 2.0 * vb * xdv + pvb]))
        return weights + biases

    return stats


def mantissa_apply(rounding: str):
    """ProgrammingModel.apply for 8-bit mantissas (the first call on an array programs it to them)."""
    lsb = {}
    draw = {}

    def apply(self, g, delta, rng, gains=None):
        if rounding == "float":
            g += delta
            np.clip(g, 0.0, None, out=g)
            return
        q = lsb.get(id(g))
        if q is None:
            q = lsb[id(g)] = float(g.max()) / MANTISSA_START
            np.round(g / q, out=g)
            g *= q
        m = (g + delta) / q
        if rounding == "shared":
            m = np.floor(m + rng.random())
        elif rounding.startswith("fixed-"):
            m = np.floor(m + float(rounding[6:]))
        elif rounding == "shared-all":  # a new number when the step reaches its first array again
            if draw.setdefault("first", id(g)) == id(g):
                draw["r"] = rng.random()
            m = np.floor(m + draw["r"])
        elif rounding == "independent":
            m = np.floor(m + rng.random(m.shape))
        else:
            m = np.round(m)
        g[...] = np.clip(m, 0, MANTISSA_MAX) * q

    return apply


@contextmanager
def emulated(codes: str, rounding: str, seed: int):
    saved = base.ResistiveBackend.statistics_difference, programming.ProgrammingModel.apply
    if codes != "float":
        base.ResistiveBackend.statistics_difference = coded_statistics(codes, np.random.default_rng(seed + 1000))
    programming.ProgrammingModel.apply = mantissa_apply(rounding)
    try:
        yield
    finally:
        base.ResistiveBackend.statistics_difference, programming.ProgrammingModel.apply = saved


def run(codes: str, rounding: str, seed: int, epochs: int, n_train: int) -> list:
    cfg = TrainConfig(dataset="digits", n_train=n_train, momentum=0.0, seed=seed, epochs=epochs)
    with tempfile.TemporaryDirectory() as d, emulated(codes, rounding, seed):
        train(cfg, f"{d}/run", log=lambda *_: None, progress=False)
        with open(f"{d}/run/metrics.json") as f:
            return [e["test_accuracy"] for e in json.load(f)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--n-train", type=int, default=320)
    p.add_argument("--fixed-r", type=float, nargs="*", default=[],
                   help="rows with the same rounding number R in every batch (R in [0, 1)), instead of the default rows")
    args = p.parse_args(argv)
    if any(not 0.0 <= r < 1.0 for r in args.fixed_r):
        raise SystemExit(f"--fixed-r takes numbers in [0, 1), got {args.fixed_r}")
    rows = [("float", f"fixed-{r:g}") for r in args.fixed_r] or ROWS
    print(f"# digits 128-100-20, first {args.n_train} training images, {args.epochs} epochs, momentum 0, seeds {args.seeds}")
    print("| codes | rounding | test accuracy, last epoch (mean) | mean of the last 3 epochs | per seed, last epoch |")
    print("|---|---|---|---|---|")
    for codes, rounding in rows:
        curves = [run(codes, rounding, s, args.epochs, args.n_train) for s in args.seeds]
        last = [c[-1] for c in curves]
        tail = [np.mean(c[-3:]) for c in curves]
        print(f"| {codes} | {rounding} | {np.mean(last):.2%} | {np.mean(tail):.2%} | "
              f"{' '.join(f'{v:.1%}' for v in last)} |", flush=True)


if __name__ == "__main__":
    main()
