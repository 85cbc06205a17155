"""Equilibria per second of the native solver on the Kendall-size network (1568-100-20).

    python benchmarks/solver.py [--mnist PATH | --random] [--calls 60] [--json out.json] [--sizes 1568 256 256 20]

Measures free and nudged (warm-started from the free state) phases, ideal and Shockley diodes, at
batch sizes 1, 64 and 512, with the default tolerance and the default threads (``circuits/threads.py``, printed).
Inputs are MNIST test images (pixel / 255 as volts; a missing file is refused, ``--random`` asks for random
uniform [0, 1] inputs instead). The solves and the bound's GEMMs are called in turn, ``--calls`` times each;
each figure is the median call, with the fastest beside it and the spread (slowest / median). Measured, never
asserted.

Each row is also given as a fraction of the compute bound of its own arithmetic, timed in the same
run: the GEMMs the solver performs, of the same shapes (the input product once per batch, over the
features, as the solver folds each +x/-x pair into one signed weight G+ - G-; then per sweep the
forward and backward products between the layers; split over the solver's chunk threads as its solves are, a
split batch's product made by the chunk threads in the same round as their sweeps), at the sweep counts the
solver took. The bound's own spread (its slowest call over its median) is printed beside it: the GEMMs alone, timed
in turn with the solves, show what the machine adds to any call's time. ``--input-scale 4`` (volts per unit pixel)
gives rows in which a realistic share of hidden nodes sits on the rails (printed).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.circuits import layered, solve
from eqprop.circuits.devices import IdealDiode, ShockleyDiode
from eqprop.circuits.solve_layered import _product

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def inputs(n, mnist_path, random=False, script="solver.py"):
    """(n inputs, what they are): MNIST test images (pixel / 255), or random uniform [0, 1] ones; a missing file is
    refused in one line naming ``script`` (the benchmarks of the solver's calls share this)."""
    if random:
        return np.random.default_rng(0).uniform(0, 1, (n, 784)), "random uniform [0, 1] (--random)"
    if not Path(mnist_path).is_file():
        raise SystemExit(f"{script}: no MNIST file at {mnist_path}; give --mnist PATH (an .npz with x_test), or "
                         "--random for random inputs")
    x = np.load(mnist_path)["x_test"][:n].reshape(n, -1) / 255.0
    return x, f"MNIST test images ({mnist_path})"


WARM_ROUNDS = 5  # untimed rounds first: the first calls of a process grow its heap and fill its caches (in one
# of three runs of ``benchmarks/call_spread.py`` the first ten timed calls at batch 512 were all slow, with page faults)


def timed(fns, calls):
    """Each function's call times (seconds, sorted), the functions called in turn ``calls`` times, after
    ``WARM_ROUNDS`` untimed rounds.

    Interleaving puts the solver and its bound under the same load; the median is what a user gets, the
    fastest call the figure least disturbed by other work, and slowest / median the spread. The garbage
    collector is off while timing, as ``timeit`` has it: a collection pass lands on whichever call happens
    to be running and is no part of a solve."""
    for _ in range(WARM_ROUNDS):
        for f in fns:
            f()  # warm the caches, the thread pool and the heap
    times = [[] for _ in fns]
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(calls):
            for i, f in enumerate(fns):
                t0 = time.perf_counter()
                f()
                times[i].append(time.perf_counter() - t0)
    finally:
        if collecting:
            gc.enable()
    return [np.sort(t) for t in times]


def summary(t) -> dict:
    """median, best and slowest / median of sorted call times."""
    med = float(np.median(t))
    return {"median": med, "best": float(t[0]), "spread": float(t[-1]) / med}


def gemm_calls(net, x):
    """The solver's GEMMs alone, as a function of (sweeps n, the input product's matrix w or None).

    The shapes are the solver's (``circuits.solve_layered``): x (B, features) @ w once (w = G+ - G-), then per
    sweep, for every connection between free layers, layer c @ (a W) forward and layer c+1 @ (W^T / a)
    backward, contiguous as the solver holds them, each written into a kept buffer. Split over the solver's chunk
    threads as its solves are: each thread makes its rows of the product (where there is one) and then all n
    sweeps, in one round of the pool (``solve_layered.FUSED_PRODUCT``); a batch in one chunk makes its product
    with every core's BLAS first."""
    from eqprop.circuits.solve_layered import _chunks, _over_chunks

    B = x.shape[0]
    L = net.n_connections
    fwd = [net.gains[c] * net.signed_weights(c) for c in range(1, L)]
    back = [np.ascontiguousarray(net.signed_weights(c).T) / net.gains[c] for c in range(1, L)]
    layers = [np.zeros((B, n)) for n in net.free_sizes]
    out_f = [np.empty((B, net.free_sizes[c])) for c in range(1, L)]
    out_b = [np.empty((B, net.free_sizes[c - 1])) for c in range(1, L)]

    drive = np.empty((B, net.free_sizes[0]))
    split = len(_chunks(B)) > 1

    def gemms(n, w=None):
        if w is not None and not split:
            _product(x, w)

        def chunk(bounds):  # into kept buffers, as the solver's compiled path does: no allocation in the bound
            lo, hi = bounds
            if w is not None and split:
                np.dot(x[lo:hi], w, out=drive[lo:hi])
            for _ in range(n):
                for c in range(1, L):
                    np.matmul(layers[c - 1][lo:hi], fwd[c - 1], out=out_f[c - 1][lo:hi])
                    np.matmul(layers[c][lo:hi], back[c - 1], out=out_b[c - 1][lo:hi])

        _over_chunks(B, chunk)

    return gemms


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--calls", type=int, default=60, help="calls of each solve and bound per row")
    p.add_argument("--json")
    p.add_argument("--input-scale", type=float, nargs="+", default=[1.0],
                   help="volts per unit pixel; larger values put more hidden nodes on the rails")
    p.add_argument("--sizes", type=int, nargs="+", default=[1568, 100, 20],
                   help="layer sizes of the untrained networks (inputs: 2 x 784 sources, outputs: 2 x 10)")
    p.add_argument("--trained", nargs="+", default=[],
                   help="run directories of trained 1568-100-20 MNIST networks (e.g. a run of recipes/mnist-kendall.toml): "
                        "rows on their conductances, ideal and Shockley (IS 1e-7 A) diodes")
    args = p.parse_args(argv)
    x_all, source = inputs(512, args.mnist, args.random)
    if args.sizes[0] != 1568 or args.sizes[-1] != 20 or len(args.sizes) < 3:
        raise SystemExit(f"--sizes must start with 1568 (784 MNIST pixels as +x/-x pairs) and end with 20 (10 output "
                         f"pairs), with at least one hidden layer between; got {args.sizes}")
    name = "-".join(map(str, args.sizes))
    from eqprop.circuits import memory, threads

    print(f"# native solver, network {name}, {os.cpu_count()} cores ({platform.processor() or platform.machine()})")
    print(f"# threads: {threads.describe()}")
    print(f"# memory: {memory.keep()} (circuits/memory.py; a solve sets it on its first call)")
    print(f"# inputs: {source}; tol 1e-10 V; nudged phase warm-started from the free equilibrium; {args.calls} calls "
          "each: median eq/s (best), slowest / median; bound fractions from the medians; the bound's GEMMs, timed in "
          "turn with the solves, have a spread of their own")
    print("| diode | V/pixel | hidden on rails | batch | calls | free eq/s | nudged eq/s | spread free/nudged | sweeps "
          "free/nudged | free / bound | nudged / bound | bound's spread free/nudged |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    networks = [(scale, "untrained", diode, layered(args.sizes, diode=diode, rails=(-0.05, 0.05), gain=4.0,
                                                     seed=0))
                for scale in args.input_scale for diode in ("ideal", "shockley")]
    for run in args.trained:
        net = trained_network(run)
        networks += [(1.0, f"trained ({run})", "ideal", with_diode(net, IdealDiode())),
                     (1.0, f"trained ({run})", "shockley", with_diode(net, ShockleyDiode(i_s=1e-7)))]
    for scale, which, diode, net in networks:
        diode = f"{diode}, {which}" if which != "untrained" else diode
        for batch in (1, 64, 512):
            x = x_all[:batch] * scale
            y = np.zeros((batch, 10))
            y[np.arange(batch), np.arange(batch) % 10] = 0.05
            free = solve(net, x)
            nudged = solve(net, x, y, beta=1e-7, init=free)
            rails = float(np.mean(np.abs(free.layers[0]) >= 0.05 - 1e-9))
            for mode in MODES:
                row = timed_row(net, x, y, free, nudged, mode, args.calls)
                rows.append(dict(diode=diode, input_scale=scale, on_rails=rails, batch=batch, **row))
                print(f"| {diode} | {scale:g} | {rails:.0%} | {batch} | {mode} | {row['free_per_s']:,.0f} "
                      f"({row['free_best_per_s']:,.0f}) | {row['nudged_per_s']:,.0f} ({row['nudged_best_per_s']:,.0f}) "
                      f"| {row['spread_free']:.2f} / {row['spread_nudged']:.2f} | {free.iterations}/"
                      f"{nudged.iterations} | {row['free_per_s'] / row['bound_free']:.0%} | "
                      f"{row['nudged_per_s'] / row['bound_nudged']:.0%} | {row['spread_bound_free']:.2f} / "
                      f"{row['spread_bound_nudged']:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(cores=os.cpu_count(), threads=threads.describe(),
                                                   memory=memory.describe(), inputs=source,
                                                   rows=rows), indent=1))


MODES = ("solve()", "step")


def timed_row(net, x, y, free, nudged, mode, calls) -> dict:
    """Median, best and spread of the free and nudged solves of one configuration, and their bounds.

    ``solve()``: bare calls, as the Python API makes them: each checks the network (a pass over its
    conductances, forming the signed input matrix G+ - G- on the way); the first derives the other matrices of its
    sweeps, and the repeated ones run the plan it kept (``solver._planned``). ``step``: the calls of
    a training step, inside ``net.unchanged()``: validated and derived once on entry; each free phase settles a
    new batch (here x and x with one pixel moved by one ulp, in turn: compared by value, it is a new batch, and
    its sweeps are the same), and its nudged phases reuse the free phase's input product, so the nudged bound has
    no input product either."""
    gemms = gemm_calls(net, x)
    w, n = net.weights[0], net.n_features
    if mode == "solve()":  # each bare call folds the pairs into G+ - G- and makes its product
        fns = [lambda: solve(net, x), lambda: solve(net, x, y, beta=1e-7, init=free),
               lambda: gemms(free.iterations, w[:n] - w[n:]), lambda: gemms(nudged.iterations, w[:n] - w[n:])]
        times = timed(fns, calls)
    else:
        other = x.copy()
        other.flat[0] = np.nextafter(other.flat[0], np.inf)
        batches = [x, other]
        frees = [free, solve(net, other)]
        if frees[1].iterations != free.iterations or \
                solve(net, other, y, beta=1e-7, init=frees[1]).iterations != nudged.iterations:
            raise SystemExit("solver.py: a one-ulp change of the batch changed its sweeps; the step rows need the same")
        turn = [0]

        def step_free():  # the free phase of the next step: a new batch
            turn[0] ^= 1
            return solve(net, batches[turn[0]])

        def step_nudged():  # a nudged phase of the same step: on the free phase's batch, from its equilibrium
            return solve(net, batches[turn[0]], y, beta=1e-7, init=frees[turn[0]])

        with net.unchanged():
            signed = w[:n] - w[n:]  # folded once on entering the block
            times = timed([step_free, step_nudged, lambda: gemms(free.iterations, signed),
                           lambda: gemms(nudged.iterations)], calls)  # the nudged phases reuse the free one's product
    s_free, s_nudged, s_bound_free, s_bound_nudged = (summary(t) for t in times)
    # the bound: equilibria/s if the solver did nothing but its GEMMs
    B = x.shape[0]
    return dict(calls=mode, free_per_s=B / s_free["median"], nudged_per_s=B / s_nudged["median"],
                free_best_per_s=B / s_free["best"], nudged_best_per_s=B / s_nudged["best"],
                spread_free=s_free["spread"], spread_nudged=s_nudged["spread"], sweeps_free=free.iterations,
                sweeps_nudged=nudged.iterations, bound_free=B / s_bound_free["median"],
                bound_nudged=B / s_bound_nudged["median"], spread_bound_free=s_bound_free["spread"],
                spread_bound_nudged=s_bound_nudged["spread"])


def trained_network(run):
    from eqprop.learning.runs import load_run

    cfg, _, net = load_run(run)
    if tuple(net.sizes) != (1568, 100, 20):
        raise SystemExit(f"{run}: a {'-'.join(map(str, net.sizes))} network; this benchmark compares 1568-100-20")
    return net


def with_diode(net, diode):
    """``net`` with every clamp's diode replaced (same conductances and rails)."""
    other = net.copy()
    other.neurons = [None if n is None else replace(n, diode=diode) for n in net.neurons]
    return other


if __name__ == "__main__":
    main()
