"""``eqprop cosim``: figures of the mixed-signal co-simulation (ngspice analog core + Lava periphery).

For one network (digits, Kendall's circuit; a trained run's conductances with ``run``): per inference (free
phase) and per training step (free, +beta, -beta with the Learner accumulating), the settling time of each
phase in circuit time, the analog energy ngspice integrates (sources, amplifiers, DACs), the digital side's
integer operations with a Loihi-figure energy estimate, and the wall-clock cost per sample; the error
against the native equilibria with ideal converters; N-bit converters against the derived bound; and the
nudging loop's stability, derived and measured, as the period grows.
"""
from __future__ import annotations

import json

import numpy as np

from eqprop.circuits import solve
from eqprop.circuits.energy import node_conductance
from eqprop.cosim.bounds import loop_limits, quantization_bound
from eqprop.cosim.converters import ADC, DAC
from eqprop.cosim.loop import CoSimulation


def _network(run, hidden, seed, diode_is):
    from eqprop.backends.base import ResistiveBackend
    from eqprop.learning.data import load, load_for
    from eqprop.learning.trainer import TrainConfig

    if run:
        from eqprop.learning.runs import load_circuit_run

        cfg, net = load_circuit_run(run, "the co-simulation", check=False)
        if getattr(net, "hidden_pairs", False):
            from eqprop.learning.rundir import RunError

            raise RunError(f"{run} has differential hidden layers, which the co-simulation does not model yet (their "
                           "inverting amplifier outputs have no netlist nodes); co-simulate a single-ended run "
                           "(--hidden-pairs off)")
        ds = load_for(cfg, n_train=None, n_test=None)
        return net, ds, cfg, f"run {run}"
    cfg = TrainConfig(hidden=list(hidden), diode="shockley", diode_is=diode_is, seed=seed).resolve()
    ds = load("digits", seed=seed)
    net = ResistiveBackend.build_network(cfg, ds.n_features, ds.n_classes)
    return net, ds, cfg, "untrained (initial conductances)"


def cosim_report(run=None, hidden=(100,), samples: int = 4, beta: float = 0.1, bits=(8, 10, 12, 16),
                 ratios=(0.5, 0.9, 1.1), seed: int = 0, diode_is: float = 1e-7, out=None, log=print) -> dict:
    from eqprop.learning.outputs import OutputDir

    output = OutputDir(out, "cosim", ("cosim.json",)).check() if out is not None else None
    converters = [(ADC(bits=n, v_range=1.0), n) for n in bits]  # bad resolutions fail here, before any run
    net, ds, cfg, what = _network(run, hidden, seed, diode_is)
    x = ds.x_test[:samples] * cfg.input_scale
    labels = ds.y_test[:samples]
    from eqprop.backends.base import ResistiveBackend

    y = ResistiveBackend.targets(labels, ds.n_classes, cfg.target_amplitude)
    g_out = float(node_conductance(net)[-1].mean())
    b_abs = beta * g_out
    report = {"network": "-".join(map(str, net.sizes)), "conductances": what, "samples": samples, "beta": beta}
    diodes = sorted({c.diode.kind for c in net.neurons if c is not None})
    log(f"co-simulation of {report['network']} ({what}), {', '.join(diodes) or 'no'} diodes, 1 pF per node, "
        f"{samples} {cfg.dataset} test samples, beta {beta:g} x the mean output conductance ({b_abs:.3g} S)")

    sim = CoSimulation(net, settle_to=1e-7)
    try:
        inf = sim.run(x, phases=("free",))
        P_inf = sim.P
        step = sim.run(x, y, b_abs, phases=("free", "plus", "minus"), learn=("plus", "minus"),
                       rates=[1.0] * (2 * net.n_connections))
        P_step = sim.P
    finally:
        sim.close()
    ref = {p: solve(net, x, y if s else None, s * b_abs, tol=1e-13).voltages
           for p, s in (("free", 0), ("plus", 1), ("minus", -1))}
    err = {p: float(np.abs(step.volts[p] - ref[p]).max()) for p in ref}
    err_inf = float(np.abs(inf.volts["free"] - ref["free"]).max())
    e_inf, e_step = inf.digital_energy(), step.digital_energy()
    report["period_s"] = sim.period
    report["slowest_mode_s"] = sim.tau_slow
    report["inference"] = {"periods": P_inf, "settling_time_s": float(inf.settling_time["free"].mean()),
                           "analog_energy_j": float(inf.energy["free"].mean()),
                           "digital_ops": inf.nudger_ops / samples, "digital_energy_j": e_inf["energy_nj"] * 1e-9 / samples,
                           "wall_s_per_sample": inf.wall_s / samples, "error_vs_native_v": err_inf}
    report["training_step"] = {
        "periods_per_phase": P_step,
        "settling_time_s": {p: float(step.settling_time[p].mean()) for p in step.phases},
        "analog_energy_j": {p: float(step.energy[p].mean()) for p in step.phases},
        "digital_ops": (step.nudger_ops + step.learner_ops) / samples,
        "learner_updates": step.learner_updates / samples,
        "digital_energy_j": e_step["energy_nj"] * 1e-9 / samples,
        "wall_s_per_sample": step.wall_s / samples, "error_vs_native_v": err}
    log(f"period T = {sim.period:.3g} s (the fastest node's RC); slowest mode {sim.tau_slow:.3g} s; "
        f"{P_inf} periods per free phase, {P_step} per training phase")
    log("")
    log("| per sample | settling (circuit time) | analog energy | digital ops | digital energy (Loihi figures) "
        "| wall clock | max error vs native |")
    log("|---|---|---|---|---|---|---|")
    i = report["inference"]
    log(f"| inference (free phase) | {i['settling_time_s'] * 1e6:.3g} us | {i['analog_energy_j'] * 1e9:.3g} nJ | "
        f"{i['digital_ops']:.0f} | {i['digital_energy_j'] * 1e9:.3g} nJ | {i['wall_s_per_sample']:.2f} s | "
        f"{err_inf:.2e} V |")
    t = report["training_step"]
    settle = " / ".join(f"{t['settling_time_s'][p] * 1e6:.3g}" for p in step.phases)
    energy = " / ".join(f"{t['analog_energy_j'][p] * 1e9:.3g}" for p in step.phases)
    log(f"| training step (free / +beta / -beta) | {settle} us | {energy} nJ | {t['digital_ops']:.0f} | "
        f"{t['digital_energy_j'] * 1e9:.3g} nJ | {t['wall_s_per_sample']:.2f} s | "
        f"{max(err.values()):.2e} V |")

    # N-bit converters against the derived bound (the -beta phase: the slower, larger bound)
    log("")
    log(f"N-bit converters (ADC over +-1 V, DAC over +-1.2 beta x 1 V), -beta phase, {samples} samples:")
    log("| bits | ADC lsb | measured max error | derived bound | bound / measured |")
    log("|---|---|---|---|---|")
    report["bits"] = []
    for adc, n in converters:
        dac = DAC(bits=n, i_range=1.2 * b_abs)
        s = CoSimulation(net, adc=adc, dac=dac, settle_to=1e-7)
        try:
            r = s.run(x, y, b_abs, phases=("minus",))
        finally:
            s.close()
        e = float(np.abs(r.volts["minus"] - ref["minus"]).max())
        bound = quantization_bound(net, -b_abs, adc.lsb, dac.lsb)
        report["bits"].append({"bits": n, "error_v": e, "bound_v": bound, "adc_clipped": r.adc_clipped})
        log(f"| {n} | {adc.lsb:.3g} V | {e:.3g} V | {bound:.3g} V | {bound / max(e, 1e-300):.1f} |")

    # stability of the nudging loop as T grows (at a beta where a limit exists: loop gain > 1)
    b_unstable = 1.5 * g_out
    lim = loop_limits(net, 1e-12, b_unstable)
    lim_train = loop_limits(net, 1e-12, b_abs)
    log("")
    log(f"nudging loop: at beta {beta:g} (loop gain {lim_train['loop_gain']:.2f}) it rings beyond "
        f"T = {lim_train['t_ring']:.3g} s and has no stability limit (loop gain <= 1); at beta 1.5 (gain "
        f"{lim['loop_gain']:.2f}) the derived limit is T = {lim['t_unstable']:.3g} s = "
        f"{lim['t_unstable'] / lim['tau']:.2f} x the output RC")
    log("| T / derived limit | T | last-period ripple of output pair 0 | error vs native | verdict |")
    log("|---|---|---|---|---|")
    report["stability"] = {"beta_rel": 1.5, "derived_limit_s": lim["t_unstable"], "t_ring_s": lim["t_ring"],
                           "tau_s": lim["tau"], "rows": []}
    want = solve(net, x[:1], y[:1], b_unstable, tol=1e-13).voltages
    for ratio in ratios:
        T = ratio * lim["t_unstable"]
        s = CoSimulation(net, period=T, periods_per_phase=60, dac=DAC(24, 0.5 * b_unstable), allow_unstable=True)
        try:
            r = s.run(x[:1], y[:1], b_unstable, phases=("plus",), record=True)
        finally:
            s.close()
        d = r.trace[:, s.pos[0]] - r.trace[:, s.neg[0]]
        ripple = float(np.abs(np.diff(d[-6:])).max())
        earlier = float(np.abs(np.diff(d[-26:-20])).max())
        e = float(np.abs(r.volts["plus"] - want).max())
        if ripple < 1e-6:
            verdict = "settles"
        elif ripple < 0.5 * earlier:
            verdict = f"rings, decaying ({earlier:.1e} V twenty periods earlier)"
        else:
            verdict = "oscillates: unstable"
        report["stability"]["rows"].append({"ratio": ratio, "period_s": T, "ripple_v": ripple, "error_v": e,
                                            "verdict": verdict})
        log(f"| {ratio:g} | {T:.3g} s | {ripple:.2e} V | {e:.2e} V | {verdict} |")
    if output is not None:
        with output:
            log(f"wrote {output.write_text('cosim.json', json.dumps(report, indent=1))}")
    return report
