"""What a bare call would reach without its Python: the compiled parts of ``solve()`` called directly.

    python benchmarks/bare_floor.py [--mnist PATH | --random] [--calls 60] [--batch 64] [--rounds 3]

1568-100-20, ideal diodes, MNIST test images, as ``benchmarks/solver.py``'s ``solve()`` rows. The floor is a bare
call's own compiled work and nothing else: the check of the conductances (``kernels.layered_sums``, which also
forms G+ - G-), the input product (``np.dot``), the bias drive added and checked (``kernels.add_row``) and the
chunk's round (``kernels.chunk_sweeps``: start, sweeps, the joined voltages and the readout), into new arrays, with
the kernel arguments a real call made (captured once) and an ``Equilibrium`` around the result. It leaves out what
a bare call must also do: the checks of the network's structure, of x, y and the start, and the look-up of the
phase's set-up (whether the conductances changed since the last call), with the Python around them. The floor's
voltages are checked to be the solve's bit for bit.

``solve()``, the floor and the two GEMM bounds (``solver.py``'s, free and nudged) are called in turn, ``--calls``
times each per round (``solver.timed``); each round prints the median call of the solve and of the floor and each as
a fraction of its phase's bound. The repeated ``solve()`` calls run their kept plans (``solver._planned``); with
``--general`` they take the general path (``solve_layered.PLANS = False``). Measured, never asserted.
"""
from __future__ import annotations

import argparse

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import kernels, layered, solve, solve_layered
from eqprop.circuits.equilibrium import Equilibrium
from solver import DEFAULT_MNIST, gemm_calls, inputs, summary, timed  # this folder's solver benchmark


def captured(net, call):
    """The arguments of the chunk round a real call makes (one chunk: batches under 256)."""
    got = []
    real = kernels.chunk_sweeps
    kernels.chunk_sweeps = lambda *a: got.append(a) or real(*a)
    try:
        eq = call()
    finally:
        kernels.chunk_sweeps = real
    if len(got) != 1:
        raise SystemExit(f"bare_floor.py: the call made {len(got)} chunk rounds; give a batch under 256")
    return eq, got[0]


def floor_call(net, x, args, bias_row):
    """The compiled parts of the bare call whose round's arguments are ``args``."""
    mode, start, _, _, layers, ks = args[:6]
    ws, bs, signed = tuple(net.weights), tuple(net.biases), net._scratch["signed"]
    split = net.pair_split()
    B, widths = x.shape[0], [v.shape[1] for v in layers]

    def call():
        totals = np.empty(sum(net.sizes[1:]))
        if not kernels.layered_sums(ws, bs, signed, True, split, totals):
            raise SystemExit("bare_floor.py: the check failed")
        drive = np.dot(x, signed)
        kernels.add_row(drive, drive, bias_row)
        fresh = tuple(np.empty((B, n)) for n in widths)
        out, pred = np.empty((B, sum(widths))), np.empty((B, widths[-1] // 2))
        sweeps, change, omega, _, _ = kernels.chunk_sweeps(mode, start, out, pred, fresh, (drive,) + ks[1:], *args[6:])
        return Equilibrium(out, x, pred, sweeps, None, 0.0, None, tuple(widths), "bcd", {"omega": omega})

    return call


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--calls", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--general", action="store_true", help="solve() without its kept plans (the general path)")
    args = p.parse_args(argv)
    solve_layered.PLANS = not args.general
    if not 1 <= args.batch < 256:
        raise SystemExit(f"bare_floor.py: --batch must be 1..255 (one chunk), got {args.batch}")
    x, _ = inputs(args.batch, args.mnist, args.random, "bare_floor.py")
    net = layered([1568, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    y = np.zeros((args.batch, 10))
    y[np.arange(args.batch), np.arange(args.batch) % 10] = 0.05
    free, free_args = captured(net, lambda: solve(net, x))
    nudged, nudged_args = captured(net, lambda: solve(net, x, y, beta=1e-7, init=free))
    floors = []
    for eq, a, beta in ((free, free_args, 0.0), (nudged, nudged_args, 1e-7)):
        setup = net._scratch["setups"][(beta != 0.0, beta)][1]
        f = floor_call(net, x, a, setup[5][0])
        if f().voltages.tobytes() != eq.voltages.tobytes():
            raise SystemExit("bare_floor.py: the floor's voltages are not the solve's")
        floors.append(f)
    gemms = gemm_calls(net, x)
    w, n = net.weights[0], net.n_features
    print(f"# 1568-100-20, ideal diodes, batch {args.batch}, {args.calls} calls each per round: median us "
          "(fraction of the phase's GEMM bound)")
    print("| round | solve() free | floor free | solve() nudged | floor nudged |")
    print("|---|---|---|---|---|")
    for r in range(args.rounds):
        t = timed([lambda: solve(net, x), floors[0], lambda: solve(net, x, y, beta=1e-7, init=free), floors[1],
                   lambda: gemms(free.iterations, w[:n] - w[n:]), lambda: gemms(nudged.iterations, w[:n] - w[n:])],
                  args.calls)
        med = [summary(s)["median"] for s in t]
        cells = [f"{1e6 * med[i]:,.0f} ({med[4 + i // 2] / med[i]:.0%})" for i in range(4)]
        print(f"| {r + 1} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
