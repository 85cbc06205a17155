"""What subnormal velocities cost the update, and that the flush keeps them away.

    python benchmarks/subnormal.py [--share 0.25] [--repeats 20]

A 1568 x 1024 parameter array (the input layer of 1568-1024-20) whose velocity has a share of subnormal
entries (what a dead hidden node's column reaches after ~6,700 steps of zero gradient under momentum 0.9),
updated with a zero gradient there: the time of one momentum update in numpy (``v *= momentum``, the
operation the subnormals slow down) and of ``learning.update.sgd_step`` (which flushes velocities below
1e-300, so after its first pass none is left), against the same with normal velocities. Measured, never
asserted.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from eqprop.learning.update import sgd_step


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--share", type=float, default=0.25, help="share of subnormal velocities (default 0.25)")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (1568, 1024)
    dead = rng.random(shape) < args.share
    print(f"# 1568 x 1024 velocities, {dead.mean():.0%} of them subnormal (1e-310) or, for comparison, 1e-3; "
          "best of {} ms".format(args.repeats))
    print("| velocities | numpy v *= 0.9 (ms) | sgd_step, first pass (ms) | sgd_step, later passes (ms) |")
    print("|---|---|---|---|")
    for name, value in (("normal", 1e-3), ("subnormal", 1e-310)):
        v0 = np.where(dead, value, 1e-3)
        v = v0.copy()

        def scale():  # the numpy update's first operation; keeps v's magnitude (x 0.9 then / 0.9)
            np.multiply(v, 0.9, out=v)
            np.divide(v, 0.9, out=v)

        t_numpy = best(scale, args.repeats) / 2
        g = np.where(dead, 0.0, 1e-3)
        p_ = rng.uniform(0, 1e-6, shape)
        firsts, laters = [], []
        for _ in range(args.repeats):
            v = v0.copy()
            gg = g.copy()
            t0 = time.perf_counter()
            sgd_step(p_, gg, v, 0.9, 1.0, 1e-9, None)
            firsts.append(time.perf_counter() - t0)
            gg = g.copy()
            t0 = time.perf_counter()
            sgd_step(p_, gg, v, 0.9, 1.0, 1e-9, None)
            laters.append(time.perf_counter() - t0)
        print(f"| {name} | {t_numpy:.2f} | {1e3 * min(firsts):.2f} | {1e3 * min(laters):.2f} |", flush=True)


if __name__ == "__main__":
    main()
