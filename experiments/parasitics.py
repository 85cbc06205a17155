"""``eqprop parasitics RUN --wire R ...``: a trained network laid out as crossbars with resistive wires.

Each connection becomes a crossbar whose row and column wires have ``R`` ohms per segment between neighbouring
crossings (``circuits.parasitics.wired``); the circuit is solved by the sparse graph solver on the first test
images and compared with the same network's ideal wires: accuracy, and how far the neurons and outputs moved.
``--spice N`` solves the first N images of each wire resistance in ngspice from the netlist of that same circuit.
The table's "wire load" is the dimensionless size of the IR drop: the wire resistance times the largest current
path's conductance, r x (the largest row or column sum of conductances) x (the crossings along that wire).
"""
from __future__ import annotations

import json

import numpy as np

from eqprop.circuits import solve
from eqprop.circuits.parasitics import check_wirable, neuron_voltages, wired, wired_nodes
from eqprop.learning.outputs import OutputDir

PARASITICS_FILES = ["parasitics.md", "parasitics.json"]
MIN_LOAD = 1e-6  # below it the shift (about a tenth of the load, in volts) nears the solve's rounding floor (~1e-8 V)
BATCH_NODES = 3_000_000  # unknowns per graph solve: the images of one solve share one LU of their wires


def wire_load(net, r_wire: float) -> float:
    """r x (largest row or column conductance sum) x (crossings along that wire), over every connection."""
    load = 0.0
    for w, b in zip(net.weights, net.biases):
        full = np.vstack([w, b])
        rows, cols = full.sum(axis=1) * full.shape[1], full.sum(axis=0) * full.shape[0]
        load = max(load, float(rows.max()), float(cols.max()))
    return r_wire * load


def run_parasitics(run, out, wires, images: int = 100, spice: int = 0, data=None, log=print) -> dict:
    from eqprop.learning.data import load_for
    from eqprop.learning.runs import load_circuit_run

    output = OutputDir(out, "parasitics", PARASITICS_FILES).check()  # refused before anything runs
    wires = [float(r) for r in wires]
    if not wires or any(not np.isfinite(r) or r <= 0 for r in wires):
        raise ValueError(f"--wire {' '.join(map(str, wires))}: give one or more wire resistances > 0 ohms per segment")
    if images < 1:
        raise ValueError(f"--images {images}: give at least 1")
    if not 0 <= spice <= images:
        raise ValueError(f"--spice {spice}: give 0 to --images ({images}) images to check in ngspice")
    cfg, net = load_circuit_run(run, "eqprop parasitics", data)
    check_wirable(net)  # before anything is solved or printed
    chunk = max(1, BATCH_NODES // wired_nodes(net))
    faint = [r for r in wires if wire_load(net, r) < MIN_LOAD]
    if faint:
        raise ValueError(f"--wire {faint[0]:g}: a wire load of {wire_load(net, faint[0]):.1e} moves the nodes by less "
                         f"than the sparse solve resolves (its shift is first order in the load); give wires of at "
                         f"least {MIN_LOAD / wire_load(net, 1.0):.2g} ohms per segment for this run")
    ds = load_for(cfg)
    x, labels = ds.x_test[:images] * cfg.input_scale, ds.y_test[:images]
    ideal = solve(net, x)
    acc0 = float(np.mean(ideal.prediction.argmax(1) == labels))
    lines = []

    def both(text):
        lines.append(text)
        log(text)

    log(f"{run}: {len(x)} test images; ideal wires: accuracy {acc0:.4f}")
    head = "| wire (ohm per segment) | wire load | accuracy | vs ideal | largest node shift (V) | mean node shift (V) |"
    both(head + (" ngspice vs native (V) | same classes |" if spice else ""))
    both("|---" * (6 + 2 * bool(spice)) + "|")
    rows = []
    for r in wires:
        graph = wired(net, r)
        volts, preds = [], []
        for i in range(0, len(x), chunk):
            eq = solve(graph, x[i:i + chunk])
            volts.append(neuron_voltages(graph, eq, net))
            preds.append(eq.prediction)
        volts, preds = np.vstack(volts), np.vstack(preds)
        shift = np.abs(volts - ideal.voltages)
        row = {"wire_ohms": r, "wire_load": wire_load(net, r), "accuracy": float(np.mean(preds.argmax(1) == labels)),
               "max_shift": float(shift.max()), "mean_shift": float(shift.mean())}
        cells = ""
        if spice:
            from eqprop.netlists import NgspiceCircuit

            native = solve(graph, x[:spice])
            sp = NgspiceCircuit(graph).equilibrium(x[:spice])
            row.update(spice_max_diff=float(np.abs(sp.voltages - native.voltages).max()),
                       spice_same_classes=int((sp.prediction.argmax(1) == native.prediction.argmax(1)).sum()))
            cells = f" {row['spice_max_diff']:.1e} | {row['spice_same_classes']} of {spice} |"
        rows.append(row)
        both(f"| {r:g} | {row['wire_load']:.2e} | {row['accuracy']:.4f} | {100 * (row['accuracy'] - acc0):+.2f} points "
             f"| {row['max_shift']:.2e} | {row['mean_shift']:.2e} |" + cells)
    result = {"run": str(run), "images": len(x), "ideal_accuracy": acc0, "wires": rows}
    with output as o:
        o.write_text("parasitics.json", json.dumps(result, indent=1))
        o.write_text("parasitics.md", "\n".join(lines) + "\n")
    return result
