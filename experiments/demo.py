"""``eqprop solve`` and ``eqprop demo``: the example network's equilibria, then digits training and a compare."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eqprop.circuits import layered, solve
from eqprop.learning.rundir import RUN_FILES, RunError, clear_run
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
    """Writes the training run to OUT/run and the compare to OUT/compare. A previous demo's own files there
    are replaced; a directory holding anything else is refused and nothing in it is touched."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise RunError(f"--out {out} is a file; give a directory (new, empty, or an earlier demo's)")
        foreign = sorted(p.name for p in out.iterdir()
                         if p.name not in ("run", "compare") and not (p.name in RUN_FILES and p.is_file()))
        if foreign:
            raise RunError(f"--out {out} holds files the demo did not write ({', '.join(foreign[:3])}); nothing was "
                           "deleted: give a new or empty directory")
        for p in out.iterdir():  # an earlier version's demo wrote its run files here, not in OUT/run
            if p.name in RUN_FILES and p.is_file():
                p.unlink()
    run_dir, report_dir = out / "run", out / "compare"
    clear_run(run_dir)  # refuses (deleting nothing) if it holds files eqprop did not write
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
