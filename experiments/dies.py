"""``eqprop dies``: a trained network programmed onto many dies (Monte Carlo of device mismatch).

Each die is the run's network with every conductance off its target by a normal relative spread, every
amplifier with its own input offset and loop gain, and (Shockley clamps) every neuron diode with its own saturation
current and emission coefficient, and (``--dead-nodes``) a fraction of its hidden nodes dead, shorted to 0 V
(``circuits.mismatch.Mismatch``), drawn from the die's number.
Each die's test accuracy comes from the native solver; ``--spice N`` also solves the first N dies' first test
images in ngspice, from the netlist of that same die, and reports the largest node difference and whether the
predicted classes agree. The table gives every die and the spread: what a designer reads as yield.
"""
from __future__ import annotations

import json

import numpy as np

from eqprop.circuits import solve
from eqprop.circuits.mismatch import Mismatch
from eqprop.learning.outputs import OutputDir

DIES_FILES = ["dies.md", "dies.json"]
SPICE_IMAGES = 40  # test images per die that ngspice solves, where asked


def _accuracy(net, x, labels, batch: int = 512) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((solve(net, x[i:i + batch]).prediction.argmax(1) == labels[i:i + batch]).sum())
    return correct / len(x)


def die_row(net, mismatch: Mismatch, d: int, x, labels, spice: bool) -> dict:
    """Die d: its test accuracy (native) and, with ``spice``, ngspice against native on its first images.
    A function of its arguments only, so that a die can run as a Ray task."""
    die = mismatch.die(net, d)
    row = {"die": d, "test_accuracy": _accuracy(die, x, labels)}
    if spice:
        from eqprop.netlists import NgspiceCircuit

        xs = x[:SPICE_IMAGES]
        native = solve(die, xs)
        sp = NgspiceCircuit(die).equilibrium(xs)
        row.update(spice_max_diff=float(np.abs(sp.voltages - native.voltages).max()),
                   spice_same_classes=int((sp.prediction.argmax(1) == native.prediction.argmax(1)).sum()))
    return row


def run_dies(run, out, dies: int = 20, conductance: float = 0.05, amplifier_offset: float = 0.0,
             amplifier_gain: float = 0.0, spice: int = 0, data=None, cluster=None, log=print, diode_is: float = 0.0,
             diode_n: float = 0.0, dead_nodes: float = 0.0) -> dict:
    """``cluster``: run the dies as Ray tasks ('ray' for a local instance, or a cluster's address); each die is
    drawn from its number, so the table is the same either way."""
    from eqprop.learning.data import load_for
    from eqprop.learning.runs import load_circuit_run

    output = OutputDir(out, "dies", DIES_FILES).check()  # refused before anything runs
    mismatch = Mismatch(conductance, amplifier_offset, amplifier_gain, diode_is, diode_n, dead_nodes)
    if not 1 <= dies <= 10000:
        raise ValueError(f"--dies {dies}: give 1 to 10000 dies")
    if not 0 <= spice <= dies:
        raise ValueError(f"--spice {spice}: give 0 to --dies ({dies}) dies to check in ngspice")
    cfg, net = load_circuit_run(run, "eqprop dies", data)
    if diode_is or diode_n:
        mismatch.die(net, 0)  # diode spreads need Shockley clamps: refused in one line before any die runs
    ds = load_for(cfg)
    x, labels = ds.x_test * cfg.input_scale, ds.y_test
    nominal = _accuracy(net, x, labels)
    lines = []

    def both(text):
        lines.append(text)
        log(text)

    log(f"{run}: {len(labels)} test images, nominal accuracy {nominal:.4f}; {dies} dies, conductances off their "
        f"targets by {100 * conductance:g}% rms, amplifier offsets {amplifier_offset:g} V rms, loop gains "
        f"{100 * amplifier_gain:g}% rms" + (f", diode IS x exp({diode_is:g} z), N {100 * diode_n:g}% rms"
                                          if diode_is or diode_n else "")
        + (f", {100 * dead_nodes:g}% of hidden nodes dead" if dead_nodes else ""))
    head = "| die | test accuracy | vs nominal |" + (" ngspice vs native (V) | same classes |" if spice else "")
    both(head)
    both("|---" * (3 + 2 * bool(spice)) + "|")
    if cluster:
        from eqprop.netlists.ray_pool import connect

        ray = connect(cluster)
        task = ray.remote(num_cpus=1)(die_row)
        refs = [ray.put(v) for v in (net, x, labels)]
        results = (ray.get(task.remote(refs[0], mismatch, d, refs[1], refs[2], d < spice)) for d in range(dies))
    else:
        results = (die_row(net, mismatch, d, x, labels, d < spice) for d in range(dies))
    rows = []
    for row in results:
        d, acc = row["die"], row["test_accuracy"]
        cells = ""
        if "spice_max_diff" in row:
            cells = f" {row['spice_max_diff']:.1e} | {row['spice_same_classes']} of {min(SPICE_IMAGES, len(x))} |"
        elif spice:
            cells = " - | - |"
        rows.append(row)
        both(f"| {d} | {acc:.4f} | {100 * (acc - nominal):+.2f} points |" + cells)
    accs = np.array([r["test_accuracy"] for r in rows])
    summary = {"nominal": nominal, "mean": float(accs.mean()), "std": float(accs.std()), "min": float(accs.min()),
               "max": float(accs.max()), "within_1_point": float(np.mean(accs >= nominal - 0.01))}
    both("")
    both(f"nominal {nominal:.4f}; dies: mean {summary['mean']:.4f}, std {summary['std']:.4f}, worst "
         f"{summary['min']:.4f}, best {summary['max']:.4f}; {100 * summary['within_1_point']:.0f}% of the dies within "
         "1 point of nominal")
    result = {"run": str(run), "mismatch": {"conductance": conductance, "amplifier_offset": amplifier_offset,
                                            "amplifier_gain": amplifier_gain, "diode_is": diode_is,
                                            "diode_n": diode_n, "dead_nodes": dead_nodes}, "summary": summary, "dies": rows}
    with output as o:
        o.write_text("dies.json", json.dumps(result, indent=1))
        o.write_text("dies.md", "\n".join(lines) + "\n")
    return result
