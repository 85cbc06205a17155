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

from eqprop.backends.cosim import NOISE_TEMPERATURE
from eqprop.circuits import solve
from eqprop.circuits.energy import node_conductance
from eqprop.cosim.bounds import loop_limits, quantization_bound
from eqprop.cosim.converters import ADC, DAC, Converters
from eqprop.cosim.loop import CoSimulation


def _network(run, hidden, seed, diode_is):
    from eqprop.backends.base import ResistiveBackend
    from eqprop.learning.data import load, load_for
    from eqprop.learning.trainer import TrainConfig

    if run:
        from eqprop.learning.runs import load_circuit_run

        cfg, net = load_circuit_run(run, "the co-simulation", check=False)
        ds = load_for(cfg, n_train=None, n_test=None)
        return net, ds, cfg, f"run {run}"
    # single-ended hidden layers: the differential default's gains 4 sqrt(n) are not dyadic, and 24-bit ADC codes
    # times their 8 fraction bits overflow the Learner's accumulators (a differential run co-simulates with --run)
    cfg = TrainConfig(hidden=list(hidden), diode="shockley", diode_is=diode_is, seed=seed, hidden_pairs=False).resolve()
    ds = load("digits", seed=seed)
    net = ResistiveBackend.build_network(cfg, ds.n_features, ds.n_classes)
    return net, ds, cfg, "untrained (initial conductances)"


def _thermal_rms(net, v, capacitance: float) -> float:
    """Median rms (V) of the free nodes that move, from the circuit's noise model at the equilibrium v."""
    from eqprop.circuits.noise import ThermalNoise

    sd = np.sqrt(np.clip(np.diag(ThermalNoise(capacitance).covariance(net, v)), 0, None))
    moving = sd[sd > 1e-3 * sd.max()] if sd.max() > 0 else sd
    return float(np.median(moving))


def _verdict(d, ratio_gap: int = 32) -> tuple:
    """(last ripple, verdict) of an output pair's differential trace: settles, rings but decays, or oscillates."""
    ripple = float(np.abs(np.diff(d[-6:])).max())
    earlier = float(np.abs(np.diff(d[-6 - ratio_gap:-ratio_gap])).max())
    if ripple < 1e-6:
        return ripple, earlier, "settles"
    if ripple < 0.8 * earlier:
        return ripple, earlier, "rings, decaying"
    return ripple, earlier, "oscillates: unstable"


def cosim_report(run=None, hidden=(100,), samples: int = 4, beta: float = 0.1, bits=(8, 10, 12, 16),
                 ratios=(0.9, 1.1), seed: int = 0, diode_is: float = 1e-7, out=None, log=print,
                 converters: str | None = None, noise_capacitance: float | None = None,
                 latencies=(0, 1, 2), noise: str = "sampled") -> dict:
    from eqprop.learning.outputs import OutputDir

    output = OutputDir(out, "cosim", ("cosim.json",)).check() if out is not None else None
    conv = Converters.parse(converters)  # bad settings fail here, before any run
    for L in latencies:
        Converters(latency=L)
    checks = [(ADC(bits=n, v_range=1.0), n) for n in bits]
    C = 1e-12 if noise_capacitance is None else float(noise_capacitance)
    temperature = None if noise_capacitance is None else NOISE_TEMPERATURE
    net, ds, cfg, what = _network(run, hidden, seed, diode_is)
    x = ds.x_test[:samples] * cfg.input_scale
    labels = ds.y_test[:samples]
    from eqprop.backends.base import ResistiveBackend

    y = ResistiveBackend.targets(labels, ds.n_classes, cfg.target_amplitude)
    g_out = float(node_conductance(net)[-1].mean())
    b_abs = beta * g_out
    report = {"network": "-".join(map(str, net.sizes)), "conductances": what, "samples": samples, "beta": beta,
              "converters": conv.describe(), "capacitance_f": C, "noise_temperature_k": temperature}
    diodes = sorted({c.diode.kind for c in net.neurons if c is not None})
    noisy = f"thermal noise at {temperature:g} K ({noise})" if temperature else "no thermal noise"
    log(f"co-simulation of {report['network']} ({what}), {', '.join(diodes) or 'no'} diodes, {C:g} F per node, "
        f"{noisy}, {samples} {cfg.dataset} test samples, beta {beta:g} x the mean output conductance ({b_abs:.3g} S)")
    log(f"converters: {conv.describe()}; a conversion costs {conv.adc().energy * 1e12:.3g} pJ (Walden figure "
        f"{conv.fom * 1e15:g} fJ per step)")

    sim = CoSimulation(net, capacitance=C, settle_to=1e-7, converters=conv, temperature=temperature, seed=seed,
                       noise=noise)
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
    read_inf = float(np.abs(inf.adc_volts["free"] - ref["free"]).max())
    e_inf, e_step = inf.digital_energy(), step.digital_energy()
    lsb = sim.adc.lsb
    rms = _thermal_rms(net, ref["free"][0], C)
    report["period_s"] = sim.period
    report["slowest_mode_s"] = sim.tau_slow
    report["inference"] = {"periods": P_inf, "settling_time_s": float(inf.settling_time["free"].mean()),
                           "analog_energy_j": float(inf.energy["free"].mean()),
                           "converter_energy_j": float(inf.converter_energy["free"].mean()),
                           "digital_ops": inf.nudger_ops / samples, "digital_energy_j": e_inf["energy_nj"] * 1e-9 / samples,
                           "wall_s_per_sample": inf.wall_s / samples, "error_vs_native_v": err_inf,
                           "readout_error_vs_native_v": read_inf}
    report["training_step"] = {
        "periods_per_phase": P_step,
        "settling_time_s": {p: float(step.settling_time[p].mean()) for p in step.phases},
        "analog_energy_j": {p: float(step.energy[p].mean()) for p in step.phases},
        "converter_energy_j": {p: float(step.converter_energy[p].mean()) for p in step.phases},
        "digital_ops": (step.nudger_ops + step.learner_ops) / samples,
        "learner_updates": step.learner_updates / samples,
        "digital_energy_j": e_step["energy_nj"] * 1e-9 / samples,
        "wall_s_per_sample": step.wall_s / samples, "error_vs_native_v": err}
    log(f"period T = {sim.period:.3g} s (the fastest node's RC); slowest mode {sim.tau_slow:.3g} s; "
        f"{P_inf} periods per free phase, {P_step} per training phase")
    log("")
    log("| per sample | settling (circuit time) | analog energy | converter energy | digital ops | digital energy "
        "(Loihi figures) | wall clock | max error vs native |")
    log("|---|---|---|---|---|---|---|---|")
    i = report["inference"]
    log(f"| inference (free phase) | {i['settling_time_s'] * 1e6:.3g} us | {i['analog_energy_j'] * 1e9:.3g} nJ | "
        f"{i['converter_energy_j'] * 1e9:.3g} nJ | {i['digital_ops']:.0f} | {i['digital_energy_j'] * 1e9:.3g} nJ | "
        f"{i['wall_s_per_sample']:.2f} s | {err_inf:.2e} V |")
    t = report["training_step"]
    settle = " / ".join(f"{t['settling_time_s'][p] * 1e6:.3g}" for p in step.phases)
    energy = " / ".join(f"{t['analog_energy_j'][p] * 1e9:.3g}" for p in step.phases)
    conv_e = sum(t["converter_energy_j"].values())
    log(f"| training step (free / +beta / -beta) | {settle} us | {energy} nJ | {conv_e * 1e9:.3g} nJ | "
        f"{t['digital_ops']:.0f} | {t['digital_energy_j'] * 1e9:.3g} nJ | {t['wall_s_per_sample']:.2f} s | "
        f"{max(err.values()):.2e} V |")
    log("(converter energy: the ADC converts the output pairs every period and every node the Learner latches at a "
        "phase's end; each nudged period updates every DAC once, counted at the same figure of merit, an assumption)")
    worst = max(max(err.values()), err_inf)
    report["error_units"] = {"adc_lsb_v": lsb, "thermal_rms_v": rms, "in_lsb": worst / lsb, "in_thermal_rms": worst / rms,
                             "readout_in_lsb": read_inf / lsb}
    limit = "the ADC's step" if lsb > rms else "thermal noise"
    clipped = inf.adc_clipped + step.adc_clipped
    report["adc_clipped"] = clipped
    log(f"settled voltages vs native: {worst:.3g} V = {worst / lsb:.3g} ADC steps ({lsb:.3g} V) = {worst / rms:.3g} x "
        f"the nodes' thermal rms at {C:g} F ({rms * 1e6:.3g} uV, median over the nodes that move); the readout "
        f"through the ADC is {read_inf:.3g} V off; {limit} is the larger"
        + (f"; {clipped} conversions fell outside the ADC's +-{sim.adc.v_range:g} V and were clipped" if clipped else ""))

    # N-bit converters against the derived bound (the -beta phase: the slower, larger bound)
    log("")
    log(f"N-bit converters (ADC over +-1 V, DAC over +-1.2 beta x 1 V, no latency, no noise), -beta phase, "
        f"{samples} samples:")
    log("| bits | ADC lsb | measured max error | derived bound | bound / measured | converter energy of the phase |")
    log("|---|---|---|---|---|---|")
    report["bits"] = []
    for adc, n in checks:
        dac = DAC(bits=n, i_range=1.2 * b_abs)
        s = CoSimulation(net, adc=adc, dac=dac, settle_to=1e-7)
        try:
            r = s.run(x, y, b_abs, phases=("minus",))
        finally:
            s.close()
        e = float(np.abs(r.volts["minus"] - ref["minus"]).max())
        bound = quantization_bound(net, -b_abs, adc.lsb, dac.lsb)
        e_conv = float(r.converter_energy["minus"].mean())
        report["bits"].append({"bits": n, "error_v": e, "bound_v": bound, "adc_clipped": r.adc_clipped,
                               "converter_energy_per_phase_j": e_conv})
        log(f"| {n} | {adc.lsb:.3g} V | {e:.3g} V | {bound:.3g} V | {bound / max(e, 1e-300):.1f} | "
            f"{e_conv * 1e9:.3g} nJ |")

    # stability of the nudging loop as T grows, per latency (at a beta where a limit exists: loop gain > 1)
    b_unstable = 1.5 * g_out
    lim_train = loop_limits(net, 1e-12, b_abs)
    log("")
    log(f"nudging loop: at beta {beta:g} (loop gain {lim_train['loop_gain']:.2f} <= 1) no period is unstable, whatever "
        "the latency; at beta 1.5 x the mean output conductance:")
    log("| latency (periods) | derived limit (T / output RC) | T / limit | last-period ripple of output pair 0 | "
        "30 periods earlier | verdict |")
    log("|---|---|---|---|---|---|")
    report["stability"] = {"beta_rel": 1.5, "rows": [], "limits": {}}
    for L in latencies:
        lim = loop_limits(net, 1e-12, b_unstable, latency=L)
        report["stability"]["limits"][str(L)] = {"t_unstable_s": lim["t_unstable"], "tau_s": lim["tau"],
                                                 "loop_gain": lim["loop_gain"]}
        for ratio in ratios:
            T = ratio * lim["t_unstable"]
            s = CoSimulation(net, period=T, periods_per_phase=80, dac=DAC(24, 0.5 * b_unstable), allow_unstable=True,
                             latency=L)
            try:
                r = s.run(x[:1], y[:1], b_unstable, phases=("plus",), record=True)
            finally:
                s.close()
            d = r.trace[:, s.pos[0]] - r.trace[:, s.neg[0]]
            ripple, earlier, verdict = _verdict(d)
            report["stability"]["rows"].append({"latency": L, "ratio": ratio, "period_s": T, "ripple_v": ripple,
                                                "earlier_v": earlier, "verdict": verdict})
            log(f"| {L} | {lim['t_unstable'] / lim['tau']:.3f} | {ratio:g} | {ripple:.2e} V | {earlier:.2e} V | "
                f"{verdict} |")
    if output is not None:
        with output:
            log(f"wrote {output.write_text('cosim.json', json.dumps(report, indent=1))}")
    return report
