"""The check a solve makes of the input connection, with and without the signed weights formed in the same pass.

    python benchmarks/check_pass.py [--calls 200] [--hidden 100 1024]

On 1568-H-20 networks (784 +x/-x input pairs): ``validate()`` alone (the compiled check and sums,
``kernels.conductance_sums``), the same followed by numpy's ``w[:n] - w[n:]`` (what a solve did before the two
were one pass), and ``validate(derived)`` (``kernels.pair_sums``: the check, the sums and G+ - G- together), each
called in turn ``--calls`` times. Prints the median (the fastest in brackets) in microseconds. Measured, never
asserted.
"""
from __future__ import annotations

import argparse
import time

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import layered


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 1024])
    args = p.parse_args(argv)
    print("| network | validate() | validate() + numpy's G+ - G- | validate(derived): one pass |")
    print("|---|---|---|---|")
    for h in args.hidden:
        net = layered([1568, h, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
        w, n = net.weights[0], net.n_features
        fns = [net.validate, lambda: (net.validate(), w[:n] - w[n:]), lambda: net.validate({})]
        times = [[] for _ in fns]
        for f in fns:
            f()
        for _ in range(args.calls):
            for t, f in zip(times, fns):
                t0 = time.perf_counter()
                f()
                t.append(time.perf_counter() - t0)
        cells = [f"{1e6 * np.median(t):,.0f} ({1e6 * min(t):,.0f})" for t in times]
        print(f"| 1568-{h}-20 | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
