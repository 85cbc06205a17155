"""``eqprop physics``: static power, settling time and energy per inference of networks in ngspice."""
from __future__ import annotations

import numpy as np

from eqprop.circuits import ShockleyDiode, layered
from eqprop.learning.rundir import load_checkpoint


# Node capacitances a circuit on a chip has: from 1 aF (a minimal wire) to 1 nF (far beyond any node). The
# transient's settling takes about 5 node time constants C / G with G in nS to uS, so 1 F would mean hours.
CAPACITANCE_RANGE = (1e-18, 1e-9)
# A crossbar wire segment's capacitance to ground: about 0.2 fF per micrometre of minimum-width metal, over a
# segment of a few micrometres (one crossing's pitch).
WIRE_CAPACITANCE = 1e-15


def parse_sizes(text: str, flag: str = "--sizes") -> list:
    """'64-32-10' -> [64, 32, 10]; anything else is a one-line error naming the flag."""
    try:
        sizes = [int(s) for s in str(text).split("-")]
    except ValueError:
        sizes = []
    if len(sizes) < 3 or min(sizes) < 1 or sizes[0] % 2 or sizes[-1] % 2:
        raise ValueError(f"{flag} {text!r}: give layer sizes joined by '-', at least input-hidden-output, each >= 1, "
                         "input and output even (+x/-x sources, output pairs), e.g. 64-32-10")
    return sizes


def physics_rows(runs=(), sizes=(), capacitance=1e-12, samples=3, log=print, wire=None,
                 wire_capacitance=None) -> list:
    """``wire``: ohms per crossbar wire segment, the networks laid out as crossbars (``circuits.parasitics.wired``)
    whose wire nodes have ``wire_capacitance`` farads each (default ``WIRE_CAPACITANCE``); the neurons and outputs
    keep ``capacitance``."""
    if wire_capacitance is not None and wire is None:
        raise ValueError("--wire-capacitance is the capacitance of a crossbar wire segment: give --wire OHMS with it")
    wire_capacitance = WIRE_CAPACITANCE if wire_capacitance is None else wire_capacitance
    for flag, c in (("--capacitance", capacitance), ("--wire-capacitance", wire_capacitance)):
        if not c > 0 or not np.isfinite(c):
            raise ValueError(f"{flag} must be a positive number of farads, got {c}")
        if not CAPACITANCE_RANGE[0] <= c <= CAPACITANCE_RANGE[1]:
            raise ValueError(f"{flag} {c:g} F is outside {CAPACITANCE_RANGE[0]:g}..{CAPACITANCE_RANGE[1]:g} F, the "
                             "range of on-chip node capacitances; the transient would run for hours (its time "
                             "constants grow with C): give e.g. 1e-12 (1 pF)")
    if samples < 1:
        raise ValueError(f"--samples must be >= 1, got {samples}")
    shapes = [(s, parse_sizes(s)) for s in sizes or (["64-32-10", "128-100-20"] if not runs else [])]
    from eqprop.netlists import NgspiceCircuit
    from eqprop.netlists.transient import settling

    nets = [(str(run), load_checkpoint(run)[0]) for run in runs]
    for name, net in nets:
        if not hasattr(net, "neurons"):
            raise ValueError(f"{name} is a run of a digital model (no circuit to simulate); give a circuit run "
                             "(native, spice, lava)")
    for s, shape in shapes:
        nets.append((s, layered(shape, diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=0)))
    if wire is not None:
        from eqprop.circuits import NetworkError
        from eqprop.circuits.parasitics import wired

        laid = []
        for name, net in nets:
            try:
                laid.append((name, wired(net, wire, wire_capacitance)))
            except NetworkError as e:  # a network the crossbars do not take (op-amps, too many nodes)
                raise ValueError(f"{name}: {e}") from None
        nets = laid
    rng = np.random.default_rng(0)
    wires = "" if wire is None else (f"; laid out as crossbars, {wire:g} ohm and {wire_capacitance:g} F per wire "
                                     "segment")
    log(f"node capacitance {capacitance:g} F{wires}; settling = outputs within 1% (of the largest output) of the "
        f"operating point; {samples} random inputs in [0, 1] V per network, mean (max)")
    log("| network | free nodes | static power (uW) | settling time (us) | energy per inference (nJ) |")
    log("|---|---|---|---|---|")
    rows = []
    for name, net in nets:
        circuit = NgspiceCircuit(net)
        r = [settling(circuit, rng.uniform(0, 1, (1, net.n_features)), capacitance) for _ in range(samples)]
        p = np.array([q.static_power for q in r]) * 1e6
        t = np.array([q.settling_time for q in r]) * 1e6
        e = np.array([q.energy for q in r]) * 1e9
        rows.append({"network": name, "power_uw": p, "settling_us": t, "energy_nj": e})
        log(f"| {name} | {len(circuit.free_nodes)} | {p.mean():.2f} ({p.max():.2f}) | {t.mean():.3f} ({t.max():.3f}) "
            f"| {e.mean():.4f} ({e.max():.4f}) |")
    return rows
