"""The compiled sweep loop side by side with the per-layer one: 1568-100-20, MNIST test images.

    python benchmarks/sweep_loop.py [--mnist PATH] [--calls 200] [--batch 64 512] [--diode ideal|shockley]

Bare ``solve()`` calls, free and nudged (warm-started from the free equilibrium), with the whole sweep loop
compiled (``kernels.box_sweeps``, the default) and with ``solve_layered.COMPILED_SWEEPS = False`` (the per-layer
Python loop around the same GEMMs and kernels), interleaved call by call in one process so both see the same
load; both on the general path (``solve_layered.PLANS = False``: a kept plan runs only the compiled loop). Prints
the median microseconds of each and checks that both loops took the same sweeps. Measured, never
asserted.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import layered, solve, solve_layered

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--batch", type=int, nargs="+", default=[64, 512])
    p.add_argument("--diode", choices=("ideal", "shockley"), default="ideal",
                   help="the hidden layer's clamps (the registered models' defaults, as benchmarks/solver.py's rows)")
    args = p.parse_args(argv)
    if not Path(args.mnist).is_file():
        raise SystemExit(f"sweep_loop.py: no MNIST file at {args.mnist}; give --mnist PATH")
    images = np.load(args.mnist)["x_test"]
    net = layered([1568, 100, 20], diode=args.diode, rails=(-0.05, 0.05), gain=4.0, seed=0)
    print(f"# 1568-100-20, {args.diode} diodes")
    print("| batch | loop | free, median us | nudged, median us | sweeps free/nudged |")
    print("|---|---|---|---|---|")
    solve_layered.PLANS = False
    try:
        for B in args.batch:
            x = images[:B].reshape(B, -1) / 255.0
            y = np.zeros((B, 10))
            y[np.arange(B), np.arange(B) % 10] = 0.05
            times, sweeps = {True: ([], []), False: ([], [])}, {}
            for compiled in (True, False):  # warm-up, and the sweeps each loop takes
                solve_layered.COMPILED_SWEEPS = compiled
                free = solve(net, x)
                sweeps[compiled] = (free.iterations, solve(net, x, y, 1e-7, init=free).iterations)
            if sweeps[True] != sweeps[False]:
                raise SystemExit(f"the two loops took different sweeps: {sweeps}")
            for _ in range(args.calls):
                for compiled in (True, False):
                    solve_layered.COMPILED_SWEEPS = compiled
                    t0 = time.perf_counter()
                    solve(net, x)
                    t1 = time.perf_counter()
                    solve(net, x, y, 1e-7, init=free)
                    t2 = time.perf_counter()
                    times[compiled][0].append(t1 - t0)
                    times[compiled][1].append(t2 - t1)
            for compiled in (True, False):
                f, n = (np.median(t) * 1e6 for t in times[compiled])
                print(f"| {B} | {'compiled' if compiled else 'per layer'} | {f:,.0f} | {n:,.0f} | "
                      f"{sweeps[compiled][0]}/{sweeps[compiled][1]} |", flush=True)
    finally:
        solve_layered.COMPILED_SWEEPS = True
        solve_layered.PLANS = True


if __name__ == "__main__":
    main()
