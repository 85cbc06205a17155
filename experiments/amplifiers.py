"""``eqprop amplifiers``: what the amplifiers must be for the circuit to settle and to learn.

Two measurements on digits (128-100-20 by default, trained one epoch with ideal amplifiers for the first):

- **Bandwidth** (ngspice transients; only a transient has it). The network's first test image is presented from
  reset with every free node of capacitance C, the amplifiers op-amps of DC gain A0 and one pole at GBW / A0
  (``OpAmp``'s SPICE subcircuit). Per GBW: the settling time (every output within 1% of the largest output's
  final value, for good) in node time constants tau = C / (smallest node conductance), the overshoot past the
  final value (% of the largest output), the number of times an output's error changes sign once inside the
  band (ringing) and the final transient value against the native DC solve. The ideal amplifiers' transient is
  the reference. A GBW "settles" when it is within 1.5x of the ideal time and does not ring (at most one sign
  change); "oscillates" when the outputs are still outside the band at the end (t_stop: 60 times the slower of
  tau and the amplifier loop's a / (2 pi GBW)). The table names the smallest GBW that settles.
- **Learning** (native, the op-amps exact at DC): one training run per amplifier (same seed, data and rates):
  ideal; DC gain A0 from 1e4 down to 10 (the forward gain falls below a while the CCCS stays 1/a: the circuit is
  no longer reciprocal and EqProp's estimate no longer the gradient); input-offset mismatch (a normal draw per
  amplifier: one die); output swing limits. The test accuracy says what each costs.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from eqprop.circuits import NetworkError, OpAmp, amplifier_model, solve
from eqprop.learning.outputs import OutputDir
from eqprop.learning.trainer import TrainConfig

AMPLIFIER_FILES = ["amplifiers.md", "amplifiers.json", "settling.png"]
DEFAULT_GBWS = (1e5, 1e6, 1e7, 1e8, 1e9)  # Hz
DEFAULT_SPECS = ("ideal", "a0=1e4", "a0=100", "a0=10", "a0=3", "a0=1",
                 "a0=1e4 gain_sigma=0.05", "a0=1e4 gain_sigma=0.2",
                 "a0=1e4 offset_sigma=5e-3", "a0=1e4 offset_sigma=2e-2", "a0=1e4 offset_sigma=5e-2", "a0=1e4 offset_sigma=0.2",
                 "a0=1e4 swing=0.08", "a0=1e4 swing=0.03", "a0=1e4 swing=0.01")
BAND = 0.01  # settled: every output within 1% of the largest output's final value
SLOWER = 1.5  # a GBW settles when its time is within this factor of the ideal amplifiers'
POINTS = 3000  # transient time points


def transient_figures(network, x, capacitance: float, t_stop: float) -> dict:
    """One sample's transient from reset: settling time, overshoot, ringing, the final error against the native
    DC solve, and the output traces (for the plot)."""
    from eqprop.netlists import NgspiceCircuit, Transient
    from eqprop.netlists.transient import _output_columns

    circuit = NgspiceCircuit(network)
    tran = circuit.transient(x, Transient(capacitance, t_stop, t_stop / POINTS))
    outputs = _output_columns(circuit)
    final = solve(network, x, tol=1e-12).voltages[0]
    t, v = tran["time"], tran["voltages"]
    trace, end = v[:, outputs], final[outputs]
    scale = max(float(np.abs(end).max()), 1e-12)
    err = trace - end
    outside = np.abs(err).max(axis=1) > BAND * scale
    settled = not outside[-1]
    last_out = int(np.nonzero(outside)[0].max()) + 1 if outside.any() else 0
    inside = np.abs(err) <= BAND * scale
    crossings = 0
    for k in range(len(outputs)):  # sign changes of each output's error from its first entry into the band
        first = np.argmax(inside[:, k]) if inside[:, k].any() else len(t)
        e = err[first:, k]
        e = e[np.abs(e) > 1e-3 * BAND * scale]  # below the simulator's noise floor a sign is no sign
        crossings = max(crossings, int(np.count_nonzero(e[1:] * e[:-1] < 0)))
    overshoot = float(np.max(np.sign(end) * err) / scale)
    return {"settled": bool(settled), "settling_time": float(t[min(last_out, len(t) - 1)]) if settled else None,
            "overshoot": max(overshoot, 0.0), "crossings": crossings,
            "final_error": float(np.abs(v[-1] - final).max()) if settled else None,
            "time": t, "outputs": trace}


def bandwidth_rows(net, x, capacitance: float = 1e-12, gbws=DEFAULT_GBWS, base: str = "a0=1e5", log=print) -> dict:
    """The GBW sweep (module notes) on one sample, each GBW on top of the op-amp ``base`` (its DC gain, output
    resistance, ...); returns {reference, rows, needed} and logs the table."""
    from eqprop.netlists.transient import node_time_constant

    model = _opamp(base)
    tau = node_time_constant(net, capacitance)
    gain = max(net.gains)
    ideal = net.copy()
    ideal.amplifier = amplifier_model(None)
    ref = transient_figures(ideal, x, capacitance, 60 * tau)
    if not ref["settled"]:
        raise RuntimeError("the ideal amplifiers' transient did not settle in 60 node time constants")
    rows = []
    for gbw in gbws:
        net_g = net.copy()
        net_g.amplifier = OpAmp(**{**model.params(), "gbw": float(gbw)})
        loop_tau = gain / (2 * np.pi * gbw)  # the non-inverting loop's closed-loop time constant
        fig = transient_figures(net_g, x, capacitance, 60 * max(tau, loop_tau))
        slower = fig["settling_time"] / ref["settling_time"] if fig["settled"] and ref["settling_time"] else None
        verdict = ("oscillates or too slow" if not fig["settled"] else "rings" if fig["crossings"] > 1
                   else "slow" if slower > SLOWER else "settles")
        rows.append({"gbw": float(gbw), "loop_tau": loop_tau, "verdict": verdict, "slower": slower,
                     **{k: v for k, v in fig.items() if k not in ("time", "outputs")}, "_trace": fig})
    needed = next((r["gbw"] for r in rows if r["verdict"] == "settles"), None)
    log(f"settling of the outputs from reset, node capacitance {capacitance:g} F (tau = {tau:.3g} s), amplifier gain "
        f"{gain:g}, {model.describe()} and each GBW; ideal amplifiers settle in {ref['settling_time'] / tau:.2f} tau, overshoot "
        f"{100 * ref['overshoot']:.1f}%")
    log("| GBW | settling (tau) | x ideal | overshoot | ringing (sign changes) | final vs native DC | verdict |")
    log("|---|---|---|---|---|---|---|")
    for r in rows:
        ts = "-" if r["settling_time"] is None else f"{r['settling_time'] / tau:.2f}"
        sl = "-" if r["slower"] is None else f"{r['slower']:.2f}"
        fe = "-" if r["final_error"] is None else f"{r['final_error']:.1e} V"
        log(f"| {r['gbw']:.0e} Hz | {ts} | {sl} | {100 * r['overshoot']:.1f}% | {r['crossings']} | {fe} | {r['verdict']} |")
    log(f"smallest GBW that settles within {SLOWER}x of ideal without ringing: "
        + (f"{needed:.0e} Hz ({needed * 2 * np.pi * tau:.2g} times the nodes' bandwidth 1/(2 pi tau))" if needed
           else "none of those tried"))
    return {"tau": tau, "capacitance": capacitance, "base": model.describe(), "gain": gain,
            "reference": {k: v for k, v in ref.items() if k not in ("time", "outputs")}, "_reference": ref,
            "rows": rows, "needed_gbw": needed}


def _opamp(spec) -> OpAmp:
    model = amplifier_model(spec)
    if not isinstance(model, OpAmp):
        raise NetworkError(f"the bandwidth sweep needs an op-amp to add a GBW to, got {spec!r} (e.g. 'a0=1e5')")
    return model


def gradient_cosine(net, x, y, model, beta_rel: float = 0.1) -> float:
    """The centered EqProp estimate's cosine with the exact gradient (through Kirchhoff's law) on ``net`` with its
    amplifiers replaced by ``model``; beta relative to the mean output-node conductance."""
    from eqprop.backends.native import NativeBackend
    from eqprop.circuits.gradient import resistive_exact_gradient
    from eqprop.learning.eqprop import cosine, eqprop_gradient, run_phases

    net = net.copy()
    net.amplifier = model
    native = NativeBackend(net, tol=1e-12)
    exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    estimate = eqprop_gradient(native, run_phases(native, x, y, beta_rel * native.beta_unit(), "centered"))
    return cosine(estimate, exact)


def learning_rows(specs=DEFAULT_SPECS, epochs: int = 10, seed: int = 0, hidden=(100,), reference=None,
                  log=print) -> list:
    """Per amplifier spec: the EqProp estimate's cosine with the exact gradient on ``reference`` ((net, x, y): the
    network trained one epoch, a batch), and the digits test accuracy of a training run with those amplifiers
    (native backend, the op-amps exact at DC)."""
    from eqprop.learning.runs import train

    models = [amplifier_model(s) for s in specs]  # every spec checked before the first training
    log(f"digits, native backend, hidden {list(hidden)}, {epochs} epochs, seed {seed}: the amplifiers as op-amps "
        "(exact at DC); the EqProp estimate (centered, beta 0.1 output G) against the exact gradient on the network "
        "trained one epoch, 64 test images")
    log("| amplifiers | forward gain / nominal | EqProp cosine | test accuracy | vs ideal |")
    log("|---|---|---|---|---|")
    rows, ideal_acc = [], None
    for spec, model in zip(specs, models):
        cos = gradient_cosine(*reference, model) if reference is not None else None
        cfg = TrainConfig(dataset="digits", hidden=list(hidden), epochs=epochs, seed=seed,
                          amplifier=None if model.ideal else spec)
        with tempfile.TemporaryDirectory() as tmp:
            result = train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        acc = result["test_accuracy"]
        gain = cfg.resolve().gains()[-1]
        ratio = model.closed_loop_gain(gain) / gain
        ideal_acc = acc if model.ideal and ideal_acc is None else ideal_acc
        diff = "-" if ideal_acc is None or model.ideal else f"{100 * (acc - ideal_acc):+.2f} points"
        rows.append({"amplifier": spec, "describe": model.describe(), "gain_ratio": ratio, "eqprop_cosine": cos,
                     "test_accuracy": acc})
        log(f"| {model.describe()} | {ratio:.4f} | {'-' if cos is None else f'{cos:.4f}'} | {acc:.4f} | {diff} |")
    return rows


def run_amplifiers(out_dir, gbws=DEFAULT_GBWS, capacitance: float = 1e-12, base: str = "a0=1e5", specs=DEFAULT_SPECS,
                   epochs: int = 10, seed: int = 0, hidden=(100,), log=print) -> dict:
    from .tolerance import reference_network

    output = OutputDir(out_dir, "amplifiers", AMPLIFIER_FILES).check()  # refused before anything runs
    specs = DEFAULT_SPECS if specs is None else specs
    for s in specs:
        amplifier_model(s)
    _opamp(base)
    lines = []

    def both(text=""):
        lines.append(text)
        log(text)

    net, x, y = reference_network(seed, hidden)
    bw = bandwidth_rows(net, x[:1], capacitance, gbws, base, both)
    both()
    learn = learning_rows(specs, epochs, seed, hidden, (net, x, y), both)
    result = {"bandwidth": {k: v for k, v in bw.items() if not k.startswith("_")}, "learning": learn}
    result["bandwidth"]["rows"] = [{k: v for k, v in r.items() if k != "_trace"} for r in bw["rows"]]
    with output as out:
        out.write_text("amplifiers.md", "\n".join(lines) + "\n")
        out.write_text("amplifiers.json", json.dumps(result, indent=1))
        _plot(out, bw)
    return result


def _plot(out, bw) -> None:
    from eqprop.learning.rundir import figure

    fig, (ax,) = figure(6, 4)
    tau = bw["tau"]
    ref = bw["_reference"]
    ax.plot(ref["time"] / tau, ref["outputs"][:, 0], "k-", label="ideal amplifiers")
    for r in bw["rows"]:
        tr = r["_trace"]
        ax.plot(tr["time"] / tau, tr["outputs"][:, 0], "-", label=f"GBW {r['gbw']:.0e} Hz ({r['verdict']})")
    ax.set(xscale="log", xlabel="time / node time constant", ylabel="first output node (V)",
           title="settling from reset: " + bw["base"])
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.9 / 6)  # room for the tick labels of millivolts
    out.savefig("settling.png", fig, dpi=120)
