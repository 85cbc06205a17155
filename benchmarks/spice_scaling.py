"""ngspice equilibria per second on the local process pool and on Ray actors, 1 and 2 workers.

    python benchmarks/spice_scaling.py [--sizes 128-100-20] [--batch 256] [--repeats 3]

Shockley diodes (IS 1e-7 A, rails +-0.05 V), gain 4, random [0, 1] V inputs, free phase. Each
configuration is warmed up once (workers start and load the circuit), then timed over ``repeats``
batches: steady-state throughput as in a training loop, where the circuit is loaded once per step.
Also the speed-up of 2 workers over 1 and whether the voltages equal the 1-worker local pool's bit
for bit (they do when chunks match; chunk boundaries change ngspice's warm start, so they are fixed
here). Measured, never asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from eqprop.circuits import ShockleyDiode, layered
from eqprop.netlists import SpicePool
from eqprop.netlists.ray_pool import RaySpicePool, connect


def timed(pool, x, repeats):
    pool.equilibrium(x)  # warm-up: workers start, load the circuit
    t0 = time.perf_counter()
    for _ in range(repeats):
        eq = pool.equilibrium(x)
    return (time.perf_counter() - t0) / repeats, eq.voltages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["64-32-10", "128-100-20"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, batch {args.batch}, "
          f"chunk {args.batch // 2} samples")
    print("| network | runner | workers | s / batch | equilibria / s | speed-up vs 1 worker | equal to local 1-worker |")
    print("|---|---|---|---|---|---|---|")
    connect("ray", num_cpus=2)
    for spec in args.sizes:
        sizes = [int(s) for s in spec.split("-")]
        net = layered(sizes, diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=1)
        x = np.random.default_rng(0).uniform(0, 1, (args.batch, net.n_features))
        chunk = args.batch // 2
        reference = None
        for runner, cls in (("local processes", SpicePool), ("Ray actors", RaySpicePool)):
            base = None
            for workers in (1, 2):
                with cls(net, workers=workers, chunk=chunk) as pool:
                    sec, volts = timed(pool, x, args.repeats)
                reference = volts if reference is None else reference
                base = sec if base is None else base
                print(f"| {spec} | {runner} | {workers} | {sec:.3f} | {args.batch / sec:.0f} | {base / sec:.2f} | "
                      f"{'yes' if np.array_equal(volts, reference) else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
