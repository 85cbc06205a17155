"""Where a bare solve's time goes: the solver's own functions wrapped with timers.

    python benchmarks/solve_parts.py [--mnist PATH | --random] [--calls 300] [--batch 64 512] [--two-rounds]

1568-100-20, ideal diodes, MNIST test images (pixel / 255 as volts), bare free and nudged calls of ``solve()`` as in
``benchmarks/solver.py``'s ``solve()`` rows. Prints per call, in microseconds: the median call (the wrappers add a
few microseconds), and the mean time in the check of the network (``LayeredNetwork.validate``: its compiled passes
and the Python around them), the sweeps' set-up (a bare call's: the phase's kept one looked up, made where
it does not serve, ``solve_layered._recalled_setup``), the input product, the compiled sweeps, and the rest (the Python
of the solve, its checks of x and y, the readout). The sweeps' round includes what the chunk threads do around
them: the bias drive added to the product, a warm start's copy into the layers (checked for NaN/inf) and their
rows of the joined voltages. With two chunk threads the sweeps' time is the calling thread's wait for both, and
a new batch's input product is made in the same round (``solve_layered``): it is counted in the sweeps, and the
input product column reads 0; ``--two-rounds`` makes it in a round of its
own, as before (``solve_layered.FUSED_PRODUCT = False``), for comparison. The calls take the general path
(``solve_layered.PLANS = False``): a bare call like an earlier one otherwise runs its kept plan, which has none of
these parts (``benchmarks/bare_floor.py`` times it against its compiled work alone). Measured, never asserted.
"""
from __future__ import annotations

import argparse
import gc
import time
from collections import defaultdict

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import layered, network, solve, solve_layered
from solver import DEFAULT_MNIST, inputs  # this folder's solver benchmark: the same inputs

PARTS = (("check", network.LayeredNetwork, "validate"), ("set-up", solve_layered, "_recalled_setup"),
         ("input product", solve_layered, "_product"), ("sweeps", solve_layered, "_over_chunks"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--batch", type=int, nargs="+", default=[64, 512])
    p.add_argument("--two-rounds", action="store_true", help="a split batch's input product in a round of its own")
    args = p.parse_args(argv)
    solve_layered.FUSED_PRODUCT = not args.two_rounds
    solve_layered.PLANS = False
    x_all, _ = inputs(max(args.batch), args.mnist, args.random, "solve_parts.py")
    net = layered([1568, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    spent = defaultdict(float)
    depth = [0]
    originals = []
    for name, owner, attr in PARTS:
        fn = getattr(owner, attr)
        originals.append((owner, attr, fn))

        def timed(*a, _fn=fn, _name=name, **k):
            if _name == "sweeps" and depth[0]:  # the input product's own chunks: counted there
                return _fn(*a, **k)
            depth[0] += _name == "input product"
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                spent[_name] += time.perf_counter() - t0
                depth[0] -= _name == "input product"

        setattr(owner, attr, timed)
    try:
        print("| batch | phase | median call (us) | check | set-up | input product | sweeps | rest |")
        print("|---|---|---|---|---|---|---|---|")
        for batch in args.batch:
            x = x_all[:batch]
            y = np.zeros((batch, 10))
            y[np.arange(batch), np.arange(batch) % 10] = 0.05
            free = solve(net, x)
            for phase, call in (("free", lambda: solve(net, x)),
                                ("nudged", lambda: solve(net, x, y, beta=1e-7, init=free))):
                for _ in range(20):
                    call()
                spent.clear()
                times = []
                gc.disable()
                try:
                    for _ in range(args.calls):
                        t0 = time.perf_counter()
                        call()
                        times.append(time.perf_counter() - t0)
                finally:
                    gc.enable()
                parts = [1e6 * spent[name] / args.calls for name, _, _ in PARTS]
                rest = 1e6 * sum(times) / args.calls - sum(parts)
                print(f"| {batch} | {phase} | {1e6 * np.median(times):,.0f} | "
                      + " | ".join(f"{v:,.0f}" for v in parts + [rest]) + " |", flush=True)
    finally:
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)


if __name__ == "__main__":
    main()
