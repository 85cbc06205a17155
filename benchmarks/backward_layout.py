"""The sweeps' backward product with its matrix contiguous and read transposed, as the compiled loop calls it.

    python benchmarks/backward_layout.py [--calls 400] [--batch 1 64 256]

For each batch and layer pair (n_below, n_above): numba's ``np.dot`` (BLAS, as in ``kernels.box_sweeps``) of a
(batch, n_above) layer by the backward matrix held contiguous, (n_above, n_below), and by W / a held
(n_below, n_above) and read transposed, into a kept buffer; and the copy that makes the contiguous one (made once
per set-up where the matrix has at most ``solve_layered.SMALL_MATRIX`` entries). Median microseconds of ``--calls``
calls each, in turn, after untimed rounds (``solver.timed``). Measured, never asserted.
"""
from __future__ import annotations

import argparse

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np
from numba import njit

from eqprop.circuits.solve_layered import SMALL_MATRIX
from solver import timed  # this folder's solver benchmark

PAIRS = [(100, 20), (20, 100), (100, 100), (256, 20), (256, 256), (1024, 20), (1024, 1024)]


@njit(nogil=True)
def _transposed(layer, scaled, out):
    np.dot(layer, scaled.T, out)


@njit(nogil=True)
def _contiguous(layer, back, out):
    np.dot(layer, back, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=400)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"# median us of {args.calls} calls each; contiguous where entries <= {SMALL_MATRIX}")
    print("| batch | n_below x n_above | read transposed | contiguous | the copy | the solver reads |")
    print("|---|---|---|---|---|---|")
    for B in args.batch:
        for below, above in PAIRS:
            scaled = rng.uniform(0, 1e-4, (below, above))
            back = np.ascontiguousarray(scaled.T)
            layer, out = rng.uniform(-0.05, 0.05, (B, above)), np.empty((B, below))
            fns = [lambda: _transposed(layer, scaled, out), lambda: _contiguous(layer, back, out),
                   lambda: np.ascontiguousarray(scaled.T)]
            times = timed(fns, args.calls)
            med = [1e6 * float(np.median(t)) for t in times]
            reads = "contiguous" if scaled.size <= SMALL_MATRIX else "transposed"
            print(f"| {B} | {below} x {above} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {reads} |", flush=True)


if __name__ == "__main__":
    main()
