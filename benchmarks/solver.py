"""Equilibria per second of the native solver on the Kendall-size network (1568-100-20).

    python benchmarks/solver.py [--mnist PATH] [--seconds 2] [--json out.json]

Measures free and nudged (warm-started from the free state) phases, ideal and Shockley diodes, at
batch sizes 1, 64 and 512, with the default tolerance. Inputs are MNIST test images when the npz is
found (pixel / 255 as volts), random uniform [0, 1] otherwise; the source is printed. Each figure is
the best of several timed repeats of at least ``--seconds`` / 4 each. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from eqprop.circuits import layered, solve

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def inputs(n, mnist_path):
    if mnist_path and Path(mnist_path).exists():
        x = np.load(mnist_path)["x_test"][:n].reshape(n, -1) / 255.0
        return x, f"MNIST test images ({mnist_path})"
    return np.random.default_rng(0).uniform(0, 1, (n, 784)), "random uniform [0, 1]"


def rate(fn, batch, seconds):
    fn()  # warm caches and the thread pool
    best = 0.0
    for _ in range(4):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += batch
            dt = time.perf_counter() - t0
            if dt >= seconds / 4:
                break
        best = max(best, n / dt)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST))
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    x_all, source = inputs(512, args.mnist)
    print(f"# native solver, network 1568-100-20, {os.cpu_count()} cores ({platform.processor() or platform.machine()})")
    print(f"# inputs: {source}; tol 1e-10 V; nudged phase warm-started from the free equilibrium")
    print(f"{'diode':<9} {'batch':>5} {'free eq/s':>11} {'nudged eq/s':>12} {'sweeps free/nudged':>19}")
    rows = []
    for diode in ("ideal", "shockley"):
        net = layered([1568, 100, 20], diode=diode, rails=(-0.05, 0.05), gain=4.0, seed=0)
        for batch in (1, 64, 512):
            x = x_all[:batch]
            y = np.zeros((batch, 10))
            y[np.arange(batch), np.arange(batch) % 10] = 0.05
            free = solve(net, x)
            nudged = solve(net, x, y, beta=1e-7, init=free)
            r_free = rate(lambda: solve(net, x), batch, args.seconds)
            r_nudged = rate(lambda: solve(net, x, y, beta=1e-7, init=free), batch, args.seconds)
            rows.append(dict(diode=diode, batch=batch, free_per_s=r_free, nudged_per_s=r_nudged,
                             sweeps_free=free.iterations, sweeps_nudged=nudged.iterations))
            print(f"{diode:<9} {batch:>5} {r_free:>11,.0f} {r_nudged:>12,.0f} {free.iterations:>9}/{nudged.iterations}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(cores=os.cpu_count(), inputs=source, rows=rows), indent=1))


if __name__ == "__main__":
    main()
