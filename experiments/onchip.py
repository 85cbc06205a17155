"""How close Lava's on-chip learning (LearningDense, a Loihi 2 three-factor rule) comes to host-side EqProp.

On one batch: the conductance update the learning engine accumulates during the nudged phase(s)
(``neuromorphic.onchip.plastic``), against the host-side EqProp update from the batched Lava equilibria
(``LavaBackend``), the native one, and the exact gradient. ``eqprop onchip`` prints the table.

The engine applies its update every time step, so the weights move while the phase settles; ``step``
(the largest update relative to the largest conductance) sets how far. Small steps measure the rule itself,
large ones show what in-run drift costs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from eqprop.circuits import solve

from eqprop.backends.native import NativeBackend
from eqprop.circuits.gradient import resistive_exact_gradient
from eqprop.learning.eqprop import cosine, eqprop_gradient, relative_error, run_phases


@dataclass
class OnchipRow:
    rule: str  # per-step (differential, applied every step) or gated (tag-and-apply)
    nudging: str
    step: float  # largest |update| / largest conductance
    cosine_lava_host: float  # vs host-side EqProp from the batched Lava equilibria
    cosine_native_host: float
    cosine_exact: float
    relative_error_lava_host: float
    steps: int
    seconds: float


def onchip_rows(net, x, y, beta, nudgings=("positive", "centered"), steps=(1e-7, 1e-4), alpha=1.0,
                timeout=900.0, log=print) -> list:
    from eqprop.neuromorphic import LavaError, LavaSession

    from eqprop.backends.lava import LavaBackend

    exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    native = NativeBackend(net, tol=1e-13)
    lava = LavaBackend(net, tol=1e-13, timeout=timeout)
    rows = []
    try:
        with LavaSession(alpha=alpha, timeout=timeout) as session:
            for nudging in nudgings:
                host_native = eqprop_gradient(native, run_phases(native, x, y, beta, nudging))
                host_lava = eqprop_gradient(lava, run_phases(lava, x, y, beta, nudging))
                g_max = max(float(np.abs(w).max()) for w in net.weights)
                scale = max(float(np.abs(g).max()) for g in host_lava)
                for step in steps:
                    eta = step * g_max / scale
                    t0 = time.perf_counter()
                    try:
                        r = session.plastic_update(net, net.encode_inputs(x), y, beta, eta, nudging)
                    except LavaError as exc:  # the weights drifted so far in the phase that it did not settle
                        rows.append(OnchipRow("per-step", nudging, step, float("nan"), float("nan"), float("nan"),
                                              float("nan"), 0, time.perf_counter() - t0))
                        log(format_row(rows[-1]) + f" did not settle: {str(exc).splitlines()[0][:120]}")
                        continue
                    seconds = time.perf_counter() - t0
                    est = [-u / eta for u in r["update"]]  # as an estimate of d(mean loss)/dG, like the host's
                    rows.append(OnchipRow("per-step", nudging, step, cosine(est, host_lava), cosine(est, host_native),
                                          cosine(est, exact), relative_error(est, host_lava), r["steps"], seconds))
                    log(format_row(rows[-1]))
            # the tag-and-apply rule (centered): the update is held in the tags until the phases are over
            host_native = eqprop_gradient(native, run_phases(native, x, y, beta, "centered"))
            host_lava = eqprop_gradient(lava, run_phases(lava, x, y, beta, "centered"))
            g_max = max(float(np.abs(w).max()) for w in net.weights)
            scale = max(float(np.abs(g).max()) for g in host_lava)
            for step in steps:
                per = step * g_max / (scale * len(x))  # dG = -per x batch x estimate: the largest is step x g_max
                t0 = time.perf_counter()
                r = session.onchip_train(net, net.encode_inputs(x), y, beta, [per] * len(host_lava), len(x))
                seconds = time.perf_counter() - t0
                est = [-(a - b) / (per * len(x)) for a, b in zip(r["weights"] + r["biases"], net.weights + net.biases)]
                rows.append(OnchipRow("gated", "centered", step, cosine(est, host_lava), cosine(est, host_native),
                                      cosine(est, exact), relative_error(est, host_lava), 0, seconds))
                log(format_row(rows[-1]))
    finally:
        lava.close()
    return rows


HEADER = ("| rule | nudging | step | cosine vs host (Lava eq.) | cosine vs host (native) | cosine vs exact | "
          "rel. error vs host | Lava steps | s |\n|---|---|---|---|---|---|---|---|---|")


def format_row(r: OnchipRow) -> str:
    return (f"| {r.rule} | {r.nudging} | {r.step:g} | {r.cosine_lava_host:.7f} | {r.cosine_native_host:.7f} | "
            f"{r.cosine_exact:.5f} | {r.relative_error_lava_host:.1e} | {r.steps} | {r.seconds:.1f} |")


def onchip_report(hidden=(100,), samples=16, beta=0.01, nudgings=("positive", "centered"), steps=(1e-7, 1e-4),
                  seed=0, timeout=900.0, int_steps=(1e-2,), repeats=3, log=print, neurons="float") -> list:
    """``eqprop onchip``: Lava's learning engine against host-side EqProp on one digits batch."""
    from eqprop.backends.native import NativeBackend as Native
    from eqprop.learning.data import load
    from eqprop.learning.trainer import TrainConfig
    from eqprop.neuromorphic.onchip.plastic import LEARNING_RULE  # imports Lava: only in this command

    cfg = TrainConfig(hidden=list(hidden), seed=seed).resolve()
    ds = load("digits", seed=seed)
    net = Native.build_network(cfg, ds.n_features, ds.n_classes)
    x = ds.x_train[:samples] * cfg.input_scale
    y = Native.targets(ds.y_train[:samples], ds.n_classes, cfg.target_amplitude)
    beta_abs = beta * Native(net).beta_unit()
    log(f"on-chip (LearningDense, rule dw = {LEARNING_RULE}) vs host-side EqProp: digits, "
        f"{'-'.join(map(str, net.sizes))} ideal diodes, batch {samples}, beta {beta:g} (relative)")
    log(HEADER)
    rows = onchip_rows(net, x, y, beta_abs, nudgings=nudgings, steps=steps, timeout=timeout, log=log)
    if int_steps:
        log("")
        log(f"bit-approximate engine (lava-onchip-int: 8-bit weights, 7-bit traces, stochastic rounding), the "
            f"network programmed to 8 bits, {neurons} neurons:")
        log(BITAPPROX_HEADER.replace("{R}", str(repeats)))
        rows += bitapprox_rows(net, x, y, beta_abs, steps=int_steps, repeats=repeats, timeout=timeout, log=log,
                               neurons=neurons)
    return rows


BITAPPROX_HEADER = ("| step | cosine vs host (mean of {R} runs) | host update stochastically rounded to 1 LSB, vs host | cosine vs "
                    "float engine | tags before rounding into the weights, vs host | norm vs host | s per run |\n"
                    "|---|---|---|---|---|---|---|")


def bitapprox_rows(net, x, y, beta, steps=(1e-2,), repeats=8, timeout=900.0, log=print, neurons="float") -> list:
    """Lava's bit-approximate engine (``lava-onchip-int``) on one batch, against host-side centered EqProp and
    the float engine on the same 8-bit-programmed network, at each ``step`` (largest update / largest
    conductance). One run's update carries the stochastic rounding of sub-LSB updates; ``floor`` is what
    rounding the host's own update that way gives (independent draws per synapse; the engine draws one number
    per step for all); ``held``: the tags of a run that never applies them, the integer rule's update before
    it is rounded into 8-bit weights. ``neurons``: the bit-approximate runs' neurons, float or integer
    (``onchip.network.integer_neurons``); the float engine's are float."""
    from eqprop.neuromorphic import LavaSession

    from eqprop.backends.lava_onchip_int import program_network

    qnet = net.copy()
    m = program_network(qnet, x, y, beta)
    native = NativeBackend(qnet, tol=1e-13)
    host = eqprop_gradient(native, run_phases(native, x, y, beta, "centered"))
    g_max = max(float(np.abs(w).max()) for w in qnet.weights)
    scale = max(float(np.abs(g).max()) for g in host)
    rng = np.random.default_rng(0)
    lsb = [2.0**q / float(a) for q, a in zip(m.q, qnet.gains)] + [2.0**q / float(a) for q, a in zip(m.q_bias, qnet.gains)]
    rows = []
    with LavaSession(timeout=timeout) as session:
        src = qnet.encode_inputs(x)
        for step in steps:
            per = step * g_max / (scale * len(x))
            want = [-per * len(x) * g for g in host]
            floor = [np.floor(w / u + rng.random(w.shape)) * u for w, u in zip(want, lsb)]
            fl = session.onchip_train(qnet, src, y, beta, [per] * len(host), len(x))
            flt = [a - b for a, b in zip(fl["weights"] + fl["biases"], qnet.weights + qnet.biases)]
            runs, t0 = [], time.perf_counter()
            for r in range(repeats):
                out = session.onchip_train(qnet, src, y, beta, [per] * len(host), len(x), int_map=m, seed=r,
                                           neurons=neurons)
                if out["copy_mismatch"] != 0:
                    raise AssertionError(f"the two copies differ by {out['copy_mismatch']:g} LSB")
                runs.append([a - b for a, b in zip(out["weights"] + out["biases"], qnet.weights + qnet.biases)])
            seconds = (time.perf_counter() - t0) / repeats
            held = session.onchip_train(qnet, src, y, beta, [per] * len(host), len(x), int_map=m, hold=True,
                                        neurons=neurons)["held"]
            norm = float(np.sqrt(sum(float((g ** 2).sum()) for g in runs[0])) /
                         np.sqrt(sum(float((g ** 2).sum()) for g in want)))
            row = {"step": step, "cosine": float(np.mean([cosine(r, want) for r in runs])), "floor": cosine(floor, want),
                   "vs_float": cosine(runs[0], flt), "held": cosine(held, want), "norm": norm, "seconds": seconds,
                   "repeats": repeats, "neurons": neurons}
            rows.append(row)
            log(f"| {step:g} | {row['cosine']:.4f} | {row['floor']:.4f} | {row['vs_float']:.4f} | {row['held']:.4f} | "
                f"{norm:.3f} | {seconds:.1f} |")
    return rows
