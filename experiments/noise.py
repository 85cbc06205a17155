"""``eqprop noise``: the native thermal-noise model of a measured equilibrium against ngspice transients.

For each network: one random input, the native equilibrium, the model's rms noise of every free node
(``circuits.noise.ThermalNoise``: Lyapunov equation of the circuit linearised there), and ngspice's transient
of the same circuit with a noise current source of density 4kTG on every conductance (Gaussian samples held
for a time step, ``trrandom``), whose node voltages'
spread is measured after settling (--transient). Printed per node and summarised as the largest relative difference.
"""
from __future__ import annotations

import time

import numpy as np

from eqprop.circuits import layered, solve
from eqprop.circuits.noise import ThermalNoise

from .physics import parse_sizes

DEFAULT_NETWORKS = (
    # plain resistors: equipartition, kT/C on every node whatever the conductances
    {"name": "12-8-4, no amplifier, linear", "sizes": [12, 8, 4], "gain": 1.0, "diode": None},
    # amplifiers of gain 4 break reciprocity; ideal diodes at +-50 mV pin some hidden nodes (zero noise)
    {"name": "12-8-8-4, gain 4, ideal diodes", "sizes": [12, 8, 8, 4], "gain": 4.0, "diode": "ideal"},
)


def noise_rows(sizes=(), gain=None, diode=None, capacitance=1e-12, window_tau=0.0, temperature=300.15,
               spans=0.0, steps_per_tau=50.0, seed=1, log=print) -> list:
    """One row per network: the model's rms per node against ngspice's noise analysis (always) and against an
    ngspice transient with a noise source on every conductance (``spans`` > 0: that many slowest time constants)."""
    nets = [dict(d) for d in DEFAULT_NETWORKS] if not sizes else [
        {"name": s, "sizes": parse_sizes(s), "gain": 1.0 if gain is None else gain, "diode": diode} for s in sizes]
    if not (np.isfinite(spans) and (spans == 0 or spans >= 50)):
        raise ValueError(f"--transient {spans!r}: give 0 (no transient) or at least 50 slowest time constants (1000 "
                         "gives about 3% per node)")
    if not (np.isfinite(steps_per_tau) and 10 <= steps_per_tau <= 1000):
        raise ValueError(f"--steps-per-tau {steps_per_tau!r}: give 10 to 1000 noise samples per fastest time constant")
    if not (np.isfinite(window_tau) and window_tau >= 0):
        raise ValueError(f"--window {window_tau!r}: give a number of slowest time constants >= 0")
    if temperature != 300.15:
        raise ValueError("--temperature: ngspice 39's noise analysis gave the noise of 300.15 K whatever its "
                         ".options temp said, so no other temperature can be checked against it; leave "
                         "--temperature out (the model itself takes any: ThermalNoise(temperature=...))")
    from eqprop.netlists import NgspiceCircuit
    from eqprop.netlists.transient import noise_spread

    rng = np.random.default_rng(seed)
    rows = []
    for spec in nets:
        net = layered(spec["sizes"], diode=spec["diode"], rails=(-0.05, 0.05), gain=spec["gain"], seed=seed)
        x = rng.uniform(0, 1, (1, net.n_features))
        eq = solve(net, x, tol=1e-12)
        point = [v[0] for v in eq.layers]
        model = ThermalNoise(capacitance, 0.0, temperature)
        tau, fast = model.time_constants(net, point)
        window = window_tau * tau
        want = model.node_std(net, eq.layers)[0]
        moving = want > 0
        circuit = NgspiceCircuit(net)
        t0 = time.perf_counter()
        # from 1/1000 of the slowest corner to 10^4 times the fastest: the density outside holds < 1e-4 of the power
        ac = circuit.noise_spectra(x, capacitance, 1e-3 / (2 * np.pi * tau), 1e4 / (2 * np.pi * fast), 100)
        row = {"network": spec["name"], "nodes": int(want.size), "pinned": int((~moving).sum()), "tau_slow": tau,
               "tau_fast": fast, "equipartition_std": model.equipartition_std, "model_std": want.tolist(),
               "noise_analysis_std": ac["total_rms"].tolist(), "noise_analysis_seconds": time.perf_counter() - t0}
        row["noise_analysis_max_rel_diff"] = _rel(ac["total_rms"], want)
        if window > 0:
            wmodel = ThermalNoise(capacitance, window, temperature).node_std(net, eq.layers)[0]
            f, S = ac["frequency"], ac["density"]
            gain2 = np.sinc(f * window) ** 2  # |H|^2 of an average over the window (np.sinc is sin(pi u) / (pi u))
            wac = np.sqrt(np.trapz(S * gain2[:, None], f, axis=0))
            row.update(window=window, model_window_std=wmodel.tolist(), noise_analysis_window_std=wac.tolist(),
                       noise_analysis_window_max_rel_diff=_rel(wac, wmodel))
        if spans:
            t0 = time.perf_counter()
            t_step = fast / steps_per_tau
            spread = noise_spread(circuit, x, capacitance, t_stop=(spans + 20) * tau, t_step=t_step, settle=20 * tau,
                                  temperature=temperature, window=window)
            row.update(transient_std=spread.std.tolist(), transient_samples=spread.samples, t_step=t_step,
                       transient_seconds=time.perf_counter() - t0, transient_max_rel_diff=_rel(spread.std, want))
            if window > 0:
                row.update(transient_window_std=spread.window_std.tolist(), windows=spread.windows,
                           transient_window_max_rel_diff=_rel(spread.window_std, np.array(row["model_window_std"])))
        rows.append(row)
        _log_row(row, log)
    return rows


def _rel(got, want) -> float:
    """Largest relative difference over the nodes that move (the model's nonzero ones)."""
    got, want = np.asarray(got), np.asarray(want)
    moving = want > 0
    return float(np.abs(got[moving] / want[moving] - 1).max()) if moving.any() else 0.0


def _log_row(row, log) -> None:
    uv = 1e6
    log(f"\n{row['network']}: {row['nodes']} free nodes ({row['pinned']} held on a rail: 0 in the model), slowest / "
        f"fastest time constant {row['tau_slow'] * 1e6:.3g} / {row['tau_fast'] * 1e6:.3g} us; kT/C: "
        f"{row['equipartition_std'] * uv:.2f} uV rms")
    cols = [("model", "model_std"), ("ngspice noise analysis", "noise_analysis_std")]
    if "transient_std" in row:
        cols.append((f"ngspice transient ({row['transient_samples']} samples)", "transient_std"))
    if "window" in row:
        w = f"{row['window'] * 1e6:.3g} us average"
        cols += [(f"model, {w}", "model_window_std"), (f"noise analysis, {w}", "noise_analysis_window_std")]
        if "transient_window_std" in row:
            cols.append((f"transient, {row['windows']} windows", "transient_window_std"))
    log("| node | " + " | ".join(f"{name} (uV)" for name, _ in cols) + " |")
    log("|---" * (len(cols) + 1) + "|")
    for k in range(row["nodes"]):
        log(f"| {k} | " + " | ".join(f"{row[key][k] * uv:.3f}" for _, key in cols) + " |")
    parts = [f"noise analysis {row['noise_analysis_max_rel_diff']:.2e} ({row['noise_analysis_seconds']:.1f} s)"]
    if "window" in row:
        parts.append(f"noise analysis, windowed {row['noise_analysis_window_max_rel_diff']:.2e}")
    if "transient_std" in row:
        parts.append(f"transient {row['transient_max_rel_diff']:.1%} ({row['transient_seconds']:.0f} s)")
    if "transient_window_std" in row:
        parts.append(f"transient, windowed {row['transient_window_max_rel_diff']:.1%}")
    log("largest relative difference from the model on the nodes that move: " + "; ".join(parts))
