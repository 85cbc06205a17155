"""Transistor-level parts characterised in ngspice: DC sweeps that become the native solver's behavioural models.

``characterise_clamp(design)`` sweeps one of the clamp's diodes (its transistor and bias source) over its junction
voltage and gives a ``TabulatedDiode``.

``characterise_amplifier(design, gains)`` sweeps the amplifier's closed loop (``TwoStageOpAmp.subckt``) over its
input voltage and its load current at each gain, one ngspice ``.dc`` per load current and gain, and reads its supply current at rest: the result is a ``TabulatedAmplifier`` that writes the
same transistors back into every netlist.
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits.errors import NetworkError
from eqprop.circuits.transistors import TabulatedAmplifier, TabulatedDiode, process

from .ngspice import NgspiceCircuit, SpiceError, ngspice_library
from .options import SpiceOptions

# The grid. Inputs: 2 mV steps where the networks' hidden nodes live (+-VIN_FINE) and 20 mV steps out to +-VIN_MAX,
# where the output saturates. Load currents: 0 and +-8 points a decade from ILOAD_MIN to ILOAD_MAX: an amplifier's
# output changes fastest near no load (a class-A stage clips when asked for more than its bias), and the networks'
# loads range from nanoamperes (megaohm conductances) to a fraction of a milliampere.
VIN_FINE, VIN_FINE_STEP = 0.25, 2e-3
VIN_MAX, VIN_STEP = 0.8, 2e-2
ILOAD_MIN, ILOAD_MAX, ILOAD_PER_DECADE = 1e-10, 1e-4, 8


def input_grid(vin_fine: float = VIN_FINE, vin_max: float = VIN_MAX) -> np.ndarray:
    """VIN_FINE_STEP steps to +-vin_fine, VIN_STEP steps beyond to +-vin_max (at least one coarse step)."""
    vin_max = max(vin_max, vin_fine + VIN_STEP)
    fine = np.arange(-round(vin_fine / VIN_FINE_STEP), round(vin_fine / VIN_FINE_STEP) + 1) * VIN_FINE_STEP
    coarse = np.arange(round(vin_fine / VIN_STEP) + 1, round(vin_max / VIN_STEP) + 1) * VIN_STEP
    return np.round(np.concatenate([-coarse[::-1], fine, coarse]), 12)


def load_grid(i_min: float = ILOAD_MIN, i_max: float = ILOAD_MAX) -> np.ndarray:
    decades = np.log10(i_max / i_min)
    pos = np.geomspace(i_min, i_max, int(round(decades * ILOAD_PER_DECADE)) + 1)
    return np.concatenate([-pos[::-1], [0.0], pos])


REPEATS = 4  # solves per grid point (see characterise_amplifier)
FIRST = 16  # solves of a sweep's first point (it starts from ngspice's operating point)
MAX_REPEATS = 32
# V: where the last two solves of a point differ by more, the sweep runs again with more repeats; past MAX_REPEATS a
# gap up to ACCEPTED is kept (and recorded in the model as ``settled``), a larger one fails the characterisation.
# Near the op-amp's saturation with a large load, ngspice's level-3 solves creep (1.3e-6 V after 32 solves).
SETTLED, ACCEPTED = 1e-6, 1e-5


class Deck(NgspiceCircuit):
    """A hand-written deck in this process's ngspice (no network): load, run one analysis, read vectors."""

    def __init__(self, deadline: float | None = 120.0):  # noqa: D107 - no network, so not NgspiceCircuit's
        self.ng = ngspice_library()
        self.lib = self.ng._ngspice_shared
        self.deadline = deadline

    def run(self, text: str, card: str, names) -> dict:
        if not self._analyse(text, card):
            raise SpiceError(f"ngspice failed the characterisation sweep ({card}): {self._last_messages()}",
                             analysis=card.split()[0])
        plot = self._current_plot()
        return {name: self._vector(plot, name) for name in names}


def characterise_amplifier(design, gains, vin=None, iload=None, options: SpiceOptions | None = None
                           ) -> TabulatedAmplifier:
    """The closed loop's V_out on the grid (``vin`` x ``iload``; default ``input_grid()`` x ``load_grid()``) at
    each gain, and the supply current at rest (V_in = 0, no load, the first gain), under the networks' SPICE
    options (their tolerances and GMIN: the table is what the network's netlist will simulate)."""
    gains = sorted({float(g) for g in np.ravel(gains)})
    if not gains or any(g <= 1 for g in gains):
        raise NetworkError(f"characterise at amplifier gains > 1 (the network's), got {gains}")
    vin = input_grid() if vin is None else np.asarray(vin, dtype=float)
    iload = load_grid() if iload is None else np.asarray(iload, dtype=float)
    n_v = vin.size
    deck = Deck()
    tables, supply_current = [], None
    p = process(design.process)
    worst = 0.0
    for gain in gains:
        rows = []
        for il in iload:
            lines = ["* amplifier characterisation", *design.subckt(), f"X1 in out bidir_amp params: gain={gain!r}",
                     # the current the output gives to its load: drawn from out into ground
                     f"I_load out 0 DC {il!r}", (options or SpiceOptions()).card()]
            row, spread = _repeated_sweep(deck, lines, vin, "out", f"the amplifier at gain {gain:g}, load {il:g} A",
                                          SETTLED, ACCEPTED)
            rows.append(row)
            worst = max(worst, float(spread.max()))
        tables.append(np.stack(rows, axis=1).ravel())  # V_in outer, I_load inner
        if supply_current is None:
            text = "\n".join(["* amplifier at rest", *design.subckt(), f"X1 in out bidir_amp params: gain={gain!r}",
                              "V_in in 0 DC 0", (options or SpiceOptions()).card(), ".end"])
            rest = deck.run(text, "op", ["v.x1.v_dd#branch"])
            # a source's branch current flows into its + terminal: the supply gives -I(V_dd)
            supply_current = float(-rest["v.x1.v_dd#branch"][0])
            if supply_current <= 0:
                raise SpiceError(f"the amplifier draws {supply_current:g} A from its supply at rest")
    return TabulatedAmplifier(design={"kind": "two-stage", **design.to_data()}, gains=tuple(gains),
                              vin=tuple(vin), iload=tuple(iload), vout=tuple(tuple(t) for t in tables),
                              supply_current=supply_current, supply=p.vdd - p.vss, settled=worst)


def amplifier_figures(model: TabulatedAmplifier, gain: float) -> dict:
    """A characterised amplifier in a designer's numbers at ``gain``: small-signal gain and output resistance at
    rest, output swing (the largest and smallest outputs on the grid, unloaded), input-referred offset (the input
    that gives 0 V out, unloaded), quiescent power."""
    vin, il, _ = model._grid
    table = model._table(gain)
    j = int(np.argmin(np.abs(il)))
    unloaded = table[:, j]
    _, d_v, d_i = model._interp(table, np.zeros(1), np.zeros(1))
    up = np.flatnonzero(np.diff(np.sign(unloaded)) != 0)
    offset = float("nan")
    if up.size:
        k = up[0]
        offset = float(vin[k] - unloaded[k] * (vin[k + 1] - vin[k]) / (unloaded[k + 1] - unloaded[k]))
    return {"gain": gain, "small_signal_gain": float(d_v[0]), "output_resistance": float(-d_i[0]),
            "swing": (float(unloaded.min()), float(unloaded.max())), "offset": offset,
            "quiescent_power": model.quiescent_power, "settled": model.settled}


# The clamp diode's grid: 0.5 mV steps from VD_MIN to VD_MAX (reverse leakage to far past the knee).
VD_MIN, VD_MAX, VD_STEP = -0.5, 0.8, 5e-4
CLAMP_SETTLED = 1e-13  # A: the clamp's last two solves of a point must agree this well


def _repeated_sweep(deck, lines, values, vector: str, what: str, settled: float, accepted: float | None = None):
    """``values`` applied by ``B_in`` (a table over a swept index) REPEATS times each (FIRST times the first, which
    starts from ngspice's operating point), as the networks' sweeps are solved: ngspice's level-3 solves converge
    over repeated warm starts, and the last two must agree within ``settled``; where they do not, the sweep runs
    again with twice the repeats, up to MAX_REPEATS, after which gaps up to ``accepted`` are kept. Returns ``vector``
    at each value's last solve and the gaps."""
    repeats = REPEATS
    while True:
        which = np.concatenate([np.zeros(max(FIRST - repeats, 0), dtype=int), np.repeat(np.arange(values.size), repeats)])
        table_in = "pwl(v(idx), " + ", ".join(f"{k}, {values[w]!r}" for k, w in enumerate(which)) + ")"
        text = "\n".join([*lines, f"B_in in 0 V = {table_in}", "V_idx idx 0 DC 0", ".end"])
        v = deck.run(text, f"dc V_idx 0 {which.size - 1} 1", [vector])[vector]
        if v.size != which.size or not np.isfinite(v).all():
            raise SpiceError(f"the characterisation sweep of {what} returned {v.size} points, not {which.size}")
        v = v[which.size - values.size * repeats:].reshape(values.size, repeats)
        gaps = np.abs(v[:, -1] - v[:, -2])
        if gaps.max() <= settled or (repeats >= MAX_REPEATS and gaps.max() <= (accepted or settled)):
            return v[:, -1], gaps
        if repeats >= MAX_REPEATS:
            k = int(np.argmax(gaps))
            raise SpiceError(f"{what} did not settle in {repeats} solves (the last two differ by {gaps[k]:.1e} at "
                             f"input {values[k]:g} V)")
        repeats *= 2


def characterise_clamp(design, options: SpiceOptions | None = None) -> TabulatedDiode:
    """The upper diode of ``design`` (its transistor from the node to its bias ``shift`` below the rail, the rail at
    0 V) swept over vd = V_node - V_rail in VD_STEP steps: its current at each point, under the networks' SPICE
    options (GMIN included: the table is what the netlist will simulate)."""
    vd = np.round(np.arange(round(VD_MIN / VD_STEP), round(VD_MAX / VD_STEP) + 1) * VD_STEP, 12)
    body, models = design.lines()
    upper = [line for line in body if line.split()[0] in ("V_bu", "M_up")]
    # the node is the swept input; the diode's current leaves it through V_meas (a 0 V ammeter) into the device
    lines = ["* clamp characterisation", "V_hi hi 0 DC 0", "V_meas in node DC 0", *upper, *models,
             (options or SpiceOptions()).card()]
    current, gaps = _repeated_sweep(Deck(), lines, vd, "v_meas#branch", "the clamp's current", CLAMP_SETTLED)
    return TabulatedDiode(design={"kind": "pmos", **design.to_data()}, vd=tuple(vd), i=tuple(current),
                          settled=float(gaps.max()))


def clamp_figures(model: TabulatedDiode) -> dict:
    """A characterised clamp diode in a designer's numbers: its current 50 mV inside the rail (leakage), at the
    rail, 50 and 100 mV past it, where past the rail it carries 1 uA, and its conductance 50 mV past."""
    vd, i = np.array(model.vd), np.array(model.i)
    knee = float(np.interp(1e-6, i, vd)) if i[-1] > 1e-6 else float("nan")
    return {"leak": float(model.current(-0.05)), "at_rail": float(model.current(0.0)),
            "past_50mv": float(model.current(0.05)), "past_100mv": float(model.current(0.1)), "knee_1ua": knee,
            "g_50mv": float(model.conductance(0.05)), "settled": model.settled}
