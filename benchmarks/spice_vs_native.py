"""ngspice operating points against the native solver, on three network sizes, in one run.

    python benchmarks/spice_vs_native.py [--batch 32] [--big-batch 8] [--workers 1]

Sizes count nodes as in Kendall et al.: 64-32-10 is 64 input sources (32 features as +x/-x), 32
hidden nodes, 10 output nodes (5 pairs). Shockley diodes (IS 1e-7 A, rails +-0.05 V), gain-4
amplifiers, random uniform [0, 1] V inputs. For ngspice: seconds per operating point, measured over
a batch (one netlist, swept; load, matrix ordering and the repeat-until-settled passes included) at
the default tight tolerances. For native: equilibria per second at batch 512 (tol 1e-10 V). Also
the largest voltage difference between the two. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from eqprop.circuits import ShockleyDiode, layered, solve
from eqprop.netlists import SpicePool

SIZES = ([64, 32, 10], [128, 64, 20], [1568, 100, 20])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="ngspice samples per size (small networks)")
    ap.add_argument("--big-batch", type=int, default=8, help="ngspice samples for 1568-100-20")
    ap.add_argument("--workers", type=int, default=1, help="ngspice processes")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, "
          f"ngspice workers {args.workers}")
    print("| network | ngspice s / op | native equilibria / s | native speed-up | max abs diff (V) |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for sizes in SIZES:
        net = layered(sizes, diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=1)
        n = args.big_batch if sizes[0] > 1000 else args.batch
        x = rng.uniform(0, 1, (max(n, 512), net.n_features))
        with SpicePool(net, workers=args.workers) as pool:
            t0 = time.perf_counter()
            eq = pool.equilibrium(x[:n])
            spice_s = (time.perf_counter() - t0) / n
        solve(net, x, tol=1e-10)  # warm
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 2.0:
            ref = solve(net, x, tol=1e-10)
            reps += 1
        native_rate = reps * len(x) / (time.perf_counter() - t0)
        diff = np.abs(eq.voltages - ref.voltages[:n]).max()
        print(f"| {'-'.join(map(str, sizes))} | {spice_s:.4f} | {native_rate:,.0f} | "
              f"{spice_s * native_rate:,.0f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
