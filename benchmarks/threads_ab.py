"""The threading policy side by side with no BLAS limit: 1568-100-20, ideal diodes, MNIST test images, batch 512.

    python benchmarks/threads_ab.py [--mnist PATH] [--calls 60] [--rounds 2]

Each round times ``--calls`` free-phase solves with the policy (``circuits/threads.py``) and then with its BLAS
limit switched off (each chunk thread's BLAS keeps all its threads), in one process. Prints the median, the
fastest call and slowest / median of each. First it prints the policy's own costs, the median of 1,000 calls each
after a solve (OpenBLAS's threads then just used): entering and leaving ``blas_threads(2)`` against threadpoolctl's
``limit()``, and ``threads.run`` over two empty ranges (a pool thread's round trip). Measured, never asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import layered, memory, solve, threads

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--calls", type=int, default=60)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if not Path(args.mnist).is_file():
        raise SystemExit(f"threads_ab.py: no MNIST file at {args.mnist}; give --mnist PATH")
    x = np.load(args.mnist)["x_test"][:512].reshape(512, -1) / 255.0
    net = layered([1568, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    policy = threads.blas_threads
    print(f"# threads: {threads.describe()}")
    solve(net, x)
    costs = []
    for what in (lambda: policy(2), lambda: threads._blas().limit(limits=1, user_api="blas"),
                 lambda: contextlib.nullcontext(threads.run([(0, 1), (1, 2)], lambda b: None))):
        t = []
        for _ in range(1000):
            t0 = time.perf_counter()
            with what():
                pass
            t.append(time.perf_counter() - t0)
        costs.append(1e6 * float(np.median(t)))
    print(f"# blas_threads(2) in and out {costs[0]:.1f} us; threadpoolctl's limit() {costs[1]:.1f} us; threads.run over "
          f"two empty ranges {costs[2]:.1f} us")
    print(f"# memory: {memory.keep()} (circuits/memory.py; a solve sets it on its first call)")
    print("| round | BLAS | median (ms) | fastest (ms) | slowest / median |")
    print("|---|---|---|---|---|")
    for r in range(args.rounds):
        for label, limit in (("policy", policy), ("no limit", lambda n: contextlib.nullcontext())):
            threads.blas_threads = limit
            try:
                solve(net, x)
                t = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    solve(net, x)
                    t.append(time.perf_counter() - t0)
            finally:
                threads.blas_threads = policy
            t = np.sort(t)
            med = float(np.median(t))
            print(f"| {r + 1} | {label} | {1e3 * med:.2f} | {1e3 * t[0]:.2f} | {t[-1] / med:.2f} |", flush=True)


if __name__ == "__main__":
    main()
