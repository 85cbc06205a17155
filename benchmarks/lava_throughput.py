"""Lava backend throughput: samples per second settling a batch in one Lava execution versus one sample per run.

    python benchmarks/lava_throughput.py [--sizes 128-100-20] [--batch 64] [--singles 8]

Free phase of a digits-size network (ideal diodes, rails +-0.05 V, gain 4) on Lava's CPU simulator
(Loihi2SimCfg, floating point), tol 1e-10 V, 50 steps between convergence checks; random inputs in
[0, 1] V. "one sample per run" settles ``--singles`` samples one after another in a batch-1 network.
Also prints the time steps used and the graded messages sent per inference. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from eqprop.circuits import layered, solve
from eqprop.backends.lava import LavaBackend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="128-100-20")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--singles", type=int, default=8)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split("-")]
    net = layered(sizes, diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (args.batch, net.n_features))
    ref = solve(net, x, tol=1e-12)
    print("| mode | samples | seconds | samples / s | steps | messages / inference | max abs diff vs native (V) |")
    print("|---|---|---|---|---|---|---|")
    backend = LavaBackend(net, timeout=600)
    try:
        backend.settle(x)  # build and compile once, then time a fresh settle from the settled state's neighbour
        t0 = time.perf_counter()
        eq = backend.settle(x[::-1].copy())
        dt = time.perf_counter() - t0
        diff = np.abs(eq.voltages[::-1] - ref.voltages).max()
        print(f"| batched | {len(x)} | {dt:.2f} | {len(x) / dt:.1f} | {eq.info['steps']} | "
              f"{eq.info['messages_per_sample']:.0f} | {diff:.1e} |", flush=True)
    finally:
        backend.close()
    backend = LavaBackend(net, timeout=600)
    try:
        backend.settle(x[:1])
        t0, steps, msgs, diff = time.perf_counter(), 0, 0.0, 0.0
        for i in range(1, args.singles + 1):
            eq = backend.settle(x[i:i + 1])
            steps += eq.info["steps"]
            msgs += eq.info["messages"]
            diff = max(diff, float(np.abs(eq.voltages[0] - ref.voltages[i]).max()))
        dt = time.perf_counter() - t0
        print(f"| one sample per run | {args.singles} | {dt:.2f} | {args.singles / dt:.1f} | {steps // args.singles} | "
              f"{msgs / args.singles:.0f} | {diff:.1e} |", flush=True)
    finally:
        backend.close()


if __name__ == "__main__":
    main()
