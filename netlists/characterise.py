"""Transistor-level parts characterised in ngspice: DC sweeps that become the native solver's behavioural models.

``characterise_amplifier(design, gains)`` sweeps the amplifier's closed loop (``TwoStageOpAmp.subckt``) over its
input voltage and its load current at each gain, one ngspice ``.dc`` per load current and gain, and reads its supply current at rest: the result is a ``TabulatedAmplifier`` that writes the
same transistors back into every netlist.
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits.errors import NetworkError
from eqprop.circuits.transistors import TabulatedAmplifier, process

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
SETTLED = 1e-6  # V: the last two solves of a point must agree this well (the largest gap is kept in the model)


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
    # Each input solved `repeats` times in a row (a sweep over an index, the input a table of it), as the networks'
    # sweeps are: ngspice's level-3 solves converge over repeated warm starts, and the last two must agree (deep in
    # saturation they converge slowly: a row that has not settled is swept again with twice the repeats).
    def solve_row(gain, il, repeats):
        which = np.concatenate([np.zeros(FIRST - repeats, dtype=int) if FIRST > repeats else np.zeros(0, dtype=int),
                                np.repeat(np.arange(n_v), repeats)])
        table_in = "pwl(v(idx), " + ", ".join(f"{k}, {vin[w]!r}" for k, w in enumerate(which)) + ")"
        text = "\n".join(["* amplifier characterisation", *design.subckt(),
                          f"X1 in out bidir_amp params: gain={gain!r}", f"B_in in 0 V = {table_in}", "V_idx idx 0 DC 0",
                          # the current the output gives to its load: drawn from out into ground
                          f"I_load out 0 DC {il!r}", (options or SpiceOptions()).card(), ".end"])
        v = deck.run(text, f"dc V_idx 0 {which.size - 1} 1", ["out"])["out"]
        if v.size != which.size or not np.isfinite(v).all():
            raise SpiceError(f"the characterisation sweep at gain {gain:g} returned {v.size} points, not {which.size}")
        v = v[which.size - n_v * repeats:].reshape(n_v, repeats)
        return v[:, -1], np.abs(v[:, -1] - v[:, -2])

    worst = 0.0
    for gain in gains:
        rows = []
        for il in iload:
            repeats = REPEATS
            row, spread = solve_row(gain, il, repeats)
            while spread.max() > SETTLED and repeats < MAX_REPEATS:
                repeats *= 2
                row, spread = solve_row(gain, il, repeats)
            if spread.max() > SETTLED:
                k = int(np.argmax(spread))
                raise SpiceError(f"the amplifier's operating point did not settle in {repeats} solves (the last two "
                                 f"differ by {spread[k]:.1e} V at input {vin[k]:g} V, load {il:g} A, gain {gain:g})")
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
