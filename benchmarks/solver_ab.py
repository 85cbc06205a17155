"""The native solver of another commit against this tree's, side by side: the same inputs, the calls interleaved.

    python benchmarks/solver_ab.py REF [--sizes 1568 100 20] [--diode ideal|shockley] [--batch 512]
                                        [--input-scale 1] [--trained RUN] [--seconds 10]

REF is a git commit or tag of this repository; its ``circuits`` folder is exported to a temporary folder
and imported as a package of its own, so both solvers run in one process on one network (the conductances
of ``--trained`` RUN when given; Shockley diodes have IS 1e-7 A). Interleaving puts both under the same
load, which on this 2-core VM moves whole-run figures by 30%. Prints equilibria/s (free, and nudged warm-started
from the free state) of both, each the median call with the fastest in brackets, and the largest voltage
difference between their equilibria. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import eqprop.circuits as this

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = ROOT / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def export(ref: str, into: Path):
    """The ``circuits`` package of commit ``ref``, importable as ``circuits_<sha>``."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True)
    if sha.returncode:
        raise SystemExit(f"{ref!r} is not a commit of {ROOT}: {sha.stderr.strip()}")
    name = f"circuits_{sha.stdout.strip()}"
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "circuits"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    (into / "circuits").rename(into / name)
    sys.path.insert(0, str(into))
    return importlib.import_module(name), name


def network(mod, sizes, diode, trained):
    d = mod.ShockleyDiode(i_s=1e-7) if diode == "shockley" else "ideal"
    net = mod.layered(sizes, diode=d, rails=(-0.05, 0.05), gain=4.0, seed=0)
    if trained:
        from eqprop.learning.runs import load_run

        _, _, t = load_run(trained)
        if tuple(t.sizes) != tuple(sizes):
            raise SystemExit(f"{trained} is a {'-'.join(map(str, t.sizes))} network; pass --sizes to match")
        for c in range(net.n_connections):
            net.weights[c][...] = t.weights[c]
            net.biases[c][...] = t.biases[c]
    return net


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref")
    p.add_argument("--sizes", type=int, nargs="+", default=[1568, 100, 20])
    p.add_argument("--diode", choices=("ideal", "shockley"), default="ideal")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--input-scale", type=float, default=1.0)
    p.add_argument("--trained")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST))
    args = p.parse_args(argv)
    n_in = args.sizes[0] // 2
    if Path(args.mnist).exists() and n_in <= 784:
        x = np.load(args.mnist)["x_test"][:args.batch].reshape(args.batch, -1)[:, :n_in] / 255.0
    else:
        x = np.random.default_rng(0).uniform(0, 1, (args.batch, n_in))
    x = x * args.input_scale
    n_out = args.sizes[-1] // 2
    y = np.zeros((args.batch, n_out))
    y[np.arange(args.batch), np.arange(args.batch) % n_out] = 0.05
    with tempfile.TemporaryDirectory() as tmp:
        other, name = export(args.ref, Path(tmp))
        mods = {name: other, "this tree": this}
        nets = {k: network(m, args.sizes, args.diode, args.trained) for k, m in mods.items()}
        free = {k: mods[k].solve(nets[k], x) for k in mods}
        calls = {}
        for k, m in mods.items():
            calls[f"{k} free"] = lambda m=m, n=nets[k]: m.solve(n, x)
            calls[f"{k} nudged"] = lambda m=m, n=nets[k], f=free[k]: m.solve(n, x, y, beta=1e-7, init=f)
        times = {k: [] for k in calls}
        t_end = time.perf_counter() + args.seconds
        while time.perf_counter() < t_end:
            for k, f in calls.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        rate = {k: f"{args.batch / np.median(t):,.0f} ({args.batch / min(t):,.0f})" for k, t in times.items()}
        a, b = (free[k].voltages for k in mods)
        print(f"# {'-'.join(map(str, args.sizes))}, {args.diode}, batch {args.batch}, {args.input_scale:g} V/pixel"
              f"{', trained ' + args.trained if args.trained else ''}; max |V difference| {np.abs(a - b).max():.1e} V")
        print(f"# {min(len(t) for t in times.values())} calls of each, interleaved; median equilibria/s (fastest)")
        print("| solver | sweeps free/nudged | free eq/s | nudged eq/s |")
        print("|---|---|---|---|")
        for k in mods:
            print(f"| {k} | {free[k].iterations}/{mods[k].solve(nets[k], x, y, beta=1e-7, init=free[k]).iterations} | "
                  f"{rate[k + ' free']} | {rate[k + ' nudged']} |")


if __name__ == "__main__":
    main()
