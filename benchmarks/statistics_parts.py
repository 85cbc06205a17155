"""A training step's statistics on 1568-H-20, compiled operands against numpy's lines, and the GEMM they feed.

    python benchmarks/statistics_parts.py [--mnist PATH | --random] [--calls 500] [--batch 16 64] [--hidden 100]

For each batch: the centred phases of MNIST training images (``run_phases``, ideal diodes), then in turn
``--calls`` times: ``energy.statistics_difference`` as the trainer calls it (``paired=True``) with its operands made
by the compiled passes (the default), the same with ``energy.COMPILED_STATISTICS = False`` (numpy's lines), and the
input connection's GEMM alone (x1^T d, the (batch + 1, features) sources over a row of ones by the (batch + 1,
nodes) operand), after untimed rounds (``solver.timed``). Checks the two paths' numbers are the same bit for bit; prints median microseconds (the fastest
in brackets). Measured, never asserted.
"""
from __future__ import annotations

import argparse
import importlib

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.backends.native import NativeBackend
from eqprop.circuits import layered
from eqprop.learning.eqprop import run_phases
from solver import DEFAULT_MNIST, inputs, timed  # this folder's solver benchmark

energy = importlib.import_module("eqprop.circuits.energy")  # (the package's ``energy`` is a function)


def _bits(stats):
    return b"".join(s.plus.tobytes() + s.row.tobytes() if hasattr(s, "row") else s.tobytes() for s in stats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    p.add_argument("--hidden", type=int, default=100)
    args = p.parse_args(argv)
    net = layered([1568, args.hidden, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    backend = NativeBackend(net)
    print(f"# 1568-{args.hidden}-20, ideal diodes, {args.calls} calls each: median us (fastest)")
    print("| batch | compiled operands | numpy's lines | the input GEMM alone |")
    print("|---|---|---|---|")
    for B in args.batch:
        x, _ = inputs(B, args.mnist, args.random, "statistics_parts.py")
        y = np.zeros((B, 10))
        y[np.arange(B), np.arange(B) % 10] = 0.05
        ph = run_phases(backend, x, y, 1e-7)
        hi, lo = ph.plus.layers, ph.minus.layers

        def stats(compiled):
            energy.COMPILED_STATISTICS = compiled
            try:
                return energy.statistics_difference(net, x, hi, lo, paired=True)
            finally:
                energy.COMPILED_STATISTICS = True

        if _bits(stats(True)) != _bits(stats(False)):
            raise SystemExit("statistics_parts.py: the two paths' numbers differ")
        n = net.n_features
        x1, d = np.vstack([x, np.ones((1, n))]), np.ones((B + 1, args.hidden))
        fns = [lambda: stats(True), lambda: stats(False),
               lambda: np.matmul(x1.T, d, out=np.empty((n, args.hidden)))]
        times = timed(fns, args.calls)
        cells = [f"{1e6 * float(np.median(t)):.0f} ({1e6 * min(t):.0f})" for t in times]
        print(f"| {B} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
