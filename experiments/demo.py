"""``eqprop solve`` and ``eqprop demo``: the example network's equilibria, then digits training and a compare."""
from __future__ import annotations


import numpy as np

from eqprop.circuits import layered, solve
from eqprop.learning.outputs import OutputDir
from eqprop.learning.rundir import clear_run
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig


def example_network():
    return layered([8, 6, 4], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)


def show_example(log=print) -> None:
    net = example_network()
    x = np.array([[1.0, 0.0, 0.5, 0.25]])
    log("example network: 4 features as +x/-x sources (8), 6 hidden nodes with ideal diodes to rails +/-0.05 V,")
    log(f"gain-4 amplifiers, 2 output pairs; input x = {x[0].tolist()}")
    free = solve(net, x)
    nudged = solve(net, x, np.array([[0.05, -0.05]]), beta=1e-7, init=free)
    log(f"{'node':<8} {'free (V)':>12} {'nudged (V)':>12}")
    for n, a, b in zip(net.free_node_names(), free.voltages[0], nudged.voltages[0]):
        log(f"{n:<8} {a:>12.6f} {b:>12.6f}")
    log(f"prediction (V+ - V-): free {np.round(free.prediction[0], 6).tolist()}, "
        f"nudged {np.round(nudged.prediction[0], 6).tolist()}")
    log(f"sweeps {free.iterations}/{nudged.iterations}, max KCL residual {max(free.residual, nudged.residual):.2e} A")


DEMO_FILES = ("run", "compare", "net.cir")


def demo(out="runs/demo", epochs=10, with_compare=True, with_hardware=True, progress=None, log=print) -> dict:
    """Every part of the toolkit in about two minutes: the example network's equilibrium, digits training on the
    native solver (OUT/run), the trained network as an ngspice netlist checked against native (OUT/net.cir), on the
    Loihi path and on Lava, and a short compare of the backends (OUT/compare). ``outputs.OutputDir``'s rules: an
    earlier demo's files are replaced; a training run, another command's output or a user's files are refused,
    and nothing is touched."""
    with OutputDir(out, "demo", DEMO_FILES) as output:
        return _demo(output, epochs, with_compare, with_hardware, progress, log)


def _demo(output, epochs, with_compare, with_hardware, progress, log) -> dict:
    run_dir = output / "run"
    clear_run(run_dir)  # the earlier demo's run; refuses (deleting nothing) files eqprop did not write
    log("== 1. equilibrium of the example network (native solver) ==")
    show_example(log)
    cfg = TrainConfig(dataset="digits", hidden=[100], epochs=epochs)
    log("\n== 2. EqProp training, native backend, digits (64 features -> 128 sources, 100 hidden, 10 output pairs) ==")
    last = train(cfg, run_dir, progress=progress)
    log(f"digits test accuracy {last['test_accuracy']:.4f}; run directory {run_dir}")
    if with_hardware:
        from .export import export_netlist
        from .loihi import loihi_report

        log("\n== 3. the trained network in ngspice: a netlist of 8 test samples, against the native solver ==")
        export_netlist(run_dir, output / "net.cir", count=8, force=True, log=log)
        log("\n== 4. the trained network on the Loihi path (integer neurons, 8-bit synapses), 2 samples also on Lava ==")
        loihi_report(run_dir, lava=2, log=log)
    if with_compare:
        from eqprop.backends import registry

        from .compare import compare

        names = [n for n, spec in registry.REGISTRY.items() if spec.in_demo and not spec.wires]
        left_out = [n for n in registry.REGISTRY if n not in names]
        log(f"\n== 5. short compare on digits (hidden 32, 2 epochs of batch 16 on 300 images, tested on 200): "
            f"{', '.join(names)} ==")
        if left_out:
            log(f"(left out as too slow for a demo: {', '.join(left_out)}; `make compare` includes them)")
        report_dir = output / "compare"
        compare(report_dir, hidden=[32], epochs=2, n_train=300, n_test=200, batch_size=16, log=log, backends=names)
        log((report_dir / "report.md").read_text())
        log(f"report: {report_dir / 'report.md'}")
    return last
