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


def demo(out="runs/demo", epochs=10, with_compare=True, progress=None, log=print) -> dict:
    """Writes the training run to OUT/run and the compare to OUT/compare (outputs.OutputDir's rules: an earlier
    demo's own run and compare are replaced; a training run, another command's output, or a user's OUT/run or
    OUT/compare is refused, and nothing is touched)."""
    with OutputDir(out, "demo", ("run", "compare")) as output:
        return _demo(output, epochs, with_compare, progress, log)


def _demo(output, epochs, with_compare, progress, log) -> dict:
    run_dir, report_dir = output / "run", output / "compare"
    clear_run(run_dir)  # the earlier demo's run; refuses (deleting nothing) files eqprop did not write
    log("== equilibrium of the example network (native solver) ==")
    show_example(log)
    cfg = TrainConfig(dataset="digits", hidden=[100], epochs=epochs)
    log("\n== EqProp training, native backend, digits (64 features -> 128 sources, 100 hidden, 10 pairs) ==")
    last = train(cfg, run_dir, progress=progress)
    log(f"digits test accuracy {last['test_accuracy']:.4f}; run directory {run_dir}")
    if with_compare:
        from .compare import compare

        log("\n== short compare of every backend on digits (32 hidden, 3 epochs, 600 training images) ==")
        from eqprop.backends import registry

        left_out = [n for n, spec in registry.REGISTRY.items() if not spec.in_demo]
        if left_out:
            log(f"(left out as too slow for a demo: {', '.join(left_out)}; `eqprop compare` includes them)")
        compare(report_dir, hidden=[32], epochs=3, n_train=600, n_test=300, log=lambda *_: None,
                backends=[n for n, spec in registry.REGISTRY.items() if spec.in_demo])
        log((report_dir / "report.md").read_text())
        log(f"report: {report_dir / 'report.md'}")
    return last
