"""Where a row's slowest call comes from: many bare solves timed one by one, with the page faults around each.

    python benchmarks/call_spread.py [--mnist PATH | --random] [--calls 600] [--batch 64 512]

1568-100-20, ideal diodes, MNIST test images (pixel / 255 as volts), as ``benchmarks/solver.py``'s first rows.
Prints per batch the median call, the slowest over the median, how many calls took more than 1.5 times the
median and at which call numbers, the minor page faults and the involuntary context switches (another task took
the core, ``getrusage``) in those calls and in the others, and the slowest over the median in each window of 60
calls (the spread ``solver.py`` reports for one row). The garbage
collector is off while timing. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import gc
import resource
import time

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import layered, solve
from solver import DEFAULT_MNIST, inputs  # this folder's solver benchmark: the same inputs



def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--calls", type=int, default=600)
    p.add_argument("--batch", type=int, nargs="+", default=[64, 512])
    args = p.parse_args(argv)
    x_all, _ = inputs(max(args.batch), args.mnist, args.random, "call_spread.py")
    net = layered([1568, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    for batch in args.batch:
        x = x_all[:batch]
        for _ in range(20):
            solve(net, x)
        times, faults, switches = [], [], []
        collecting = gc.isenabled()
        gc.disable()
        try:
            for _ in range(args.calls):
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.perf_counter()
                solve(net, x)
                times.append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                faults.append(r1.ru_minflt - r0.ru_minflt)
                switches.append(r1.ru_nivcsw - r0.ru_nivcsw)
        finally:
            if collecting:
                gc.enable()
        times, faults, switches = np.array(times), np.array(faults), np.array(switches)
        med = float(np.median(times))
        slow = times > 1.5 * med
        n = len(times) // 60 * 60
        windows = times[:n].reshape(-1, 60)
        print(f"batch {batch}: median {1e6 * med:.0f} us, slowest / median {times.max() / med:.2f}; "
              f"{int(slow.sum())} of {len(times)} calls over 1.5x the median (calls {np.nonzero(slow)[0].tolist()}); "
              f"page faults in those {faults[slow].sum()}, in the others {faults[~slow].sum()}; involuntary context "
              f"switches in those {switches[slow].sum()}, in the others {switches[~slow].sum()}; per 60 calls, slowest "
              f"/ median: {' '.join(f'{w.max() / np.median(w):.2f}' for w in windows)}", flush=True)


if __name__ == "__main__":
    main()
