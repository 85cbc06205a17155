"""Co-simulated training steps (ngspice transient + Lava periphery in lockstep): seconds per training sample.

    python benchmarks/cosim_step.py [--hidden 100] [--batch 16] [--steps 5] [--forms transformed resistors]
                                    [--noise-capacitance F]

A training step of the cosim backend with the defaults of ``eqprop train --backend cosim`` (centered nudging:
free, +beta and -beta phases, each settled for the derived number of periods, the Learner's update programmed
through the device model) on scikit-learn's digits, 128-<hidden>-20. ``transformed`` writes the ideal input
drivers as Norton equivalents (the default, ``Drive.source_transform``); ``resistors`` writes every input
conductance as a resistor from its driver. ``--noise-capacitance F`` times the steps with every conductance's
thermal noise in the transients (``eqprop train --backend cosim --noise-capacitance F``) beside the steps without it
(1 pF nodes: give 1e-12 to compare at the same capacitance). Prints the median and the best seconds per training
sample over the steps (after one warm-up step), and where the median step's time goes: ngspice integrating between
the period boundaries, the boundaries themselves (reading the nodes, the ADC, the exchange with Lava:
``CosimResult.bridge_s``) and the rest (writing and loading the netlist, the host's Python); then how long reading
the Learner's commands takes through Lava's ``Var.get`` and through the register the loop reads. Never run beside a
Lava or other heavy job: Lava busy-waits. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from eqprop.backends.cosim import CosimBackend
from eqprop.learning.data import load
from eqprop.learning.programming import preset
from eqprop.learning.runs import build_network, resolved
from eqprop.learning.trainer import EqPropTrainer, TrainConfig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, nargs="+", default=[100])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--forms", nargs="+", default=["transformed", "resistors"], choices=["transformed", "resistors"])
    p.add_argument("--noise-capacitance", type=float, default=None, metavar="F",
                   help="also time the steps with thermal noise in the transients at this node capacitance")
    args = p.parse_args(argv)
    data = load("digits")
    cfg = resolved(TrainConfig(dataset="digits", backend="cosim", hidden=list(args.hidden), batch_size=args.batch,
                               momentum=0.0))
    sizes = "-".join(str(n) for n in [data.n_features * 2] + list(args.hidden) + [20])
    print(f"# cosim training step, {sizes}, batch {args.batch}, centered nudging, default converters, digits")
    print("| input drivers | thermal noise | periods per phase | s / training sample, median | best | ngspice | "
          "boundaries | rest |")
    print("|---|---|---|---|---|---|---|---|")
    notes = []
    noises = [None] if args.noise_capacitance is None else [None, args.noise_capacitance]
    for form, noisy in [(f, n) for f in args.forms for n in noises]:
        net = build_network(cfg, data.n_features, data.n_classes)
        backend = CosimBackend.from_config(net, replace(cfg, noise_capacitance=noisy))  # as the flag builds it
        backend.sim.source_transform = form == "transformed"
        g_max = 2.0 * max(float(w.max()) for w in net.weights)
        trainer = EqPropTrainer(backend, cfg, preset(cfg.device, g_max), data.n_classes)
        try:
            trainer.step(data.x_train[:args.batch], data.y_train[:args.batch])  # warm-up: Lava compiles
            times, shares = [], []
            for s in range(args.steps):
                i = (s + 1) * args.batch
                t0 = time.perf_counter()
                trainer.step(data.x_train[i:i + args.batch], data.y_train[i:i + args.batch])
                wall = time.perf_counter() - t0
                r = backend.figures["last"]
                times.append(wall / args.batch)
                shares.append(((r.transient_s - r.bridge_s) / wall, r.bridge_s / wall, 1 - r.transient_s / wall))
            reads = _command_reads(backend.sim)
        finally:
            backend.close()
        ng, bridge, rest = shares[int(np.argsort(times)[len(times) // 2])]
        what = "none" if noisy is None else f"transient, {noisy:g} F"
        print(f"| {form} | {what} | {backend.sim.P} | {np.median(times):.3f} | {min(times):.3f} | {ng:.0%} | "
              f"{bridge:.0%} | {rest:.0%} |", flush=True)
        notes.append(f"{form}: the Learner's {reads[2]} commands read with Lava's Var.get {np.median(reads[0]):.3f} s "
                     f"median (best {min(reads[0]):.3f} s), from the host's register {np.median(reads[1]) * 1e3:.3f} ms "
                     "(what the loop reads)")
    for line in notes:
        print(f"# {line}")


def _command_reads(sim, repeats: int = 3) -> tuple:
    """Seconds to read the last batch's programming commands both ways: Lava 0.10's ``Var.get`` (one channel
    message per element) and the mapped register the loop reads; they must hold the same numbers."""
    via_var, via_register = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        var = np.asarray(sim._lava["learner"].commands.get(), dtype=float)
        via_var.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reg = np.array(sim._register, dtype=float)
        via_register.append(time.perf_counter() - t0)
        if not np.array_equal(var, reg):
            raise SystemExit("the register and the Learner's Var differ: the loop would program wrong commands")
    return via_var, via_register, var.size


if __name__ == "__main__":
    main()
