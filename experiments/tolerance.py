"""``eqprop tolerance``: what it takes to learn under the circuit's thermal noise.

Two measurements on digits (128-100-20 by default, the native backend):

- **The gradient.** On a network trained one epoch without noise, one batch: the exact gradient (implicit
  differentiation), and the centered EqProp estimate from both nudged phases measured with the noise of nodes of
  capacitance C (``circuits.noise``: each sample's own covariance at its operating point), for each beta: the
  cosine with the exact gradient, averaged over draws of the noise, beside its theory:

      E[g_hat] = g_0(beta) + s sum_b k (sigma+^2 - sigma-^2),
      Var[g_hat] = s^2 sum_b k^2 (4 d+^2 sigma+^2 + 2 sigma+^4 + 4 d-^2 sigma-^2 + 2 sigma-^4),
      cos ~ g . E[g_hat] / (|g| sqrt(|E[g_hat]|^2 + sum Var)),

  per conductance: d the voltage drop across it in a nudged phase, sigma^2 the variance of that drop's noise
  (from the covariance: a^2 P_ii + P_jj -+ 2 a P_ij across an amplifier), k its energy weight / 2, s the
  estimate's scale 1 / (2 beta B ...). The noiseless bias g_0 - g grows as beta^2 and the noise as 1 / beta:
  the best beta for a noise level is where they cross, and the table says which.
- **The accuracy.** One training run per capacitance (same seed, same data), every measured equilibrium of the
  training carrying that noise; the test accuracy is read from the noiseless readout (what inference averaged over
  many periods gives), so the table isolates what the noise does to learning.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from eqprop.backends.native import NativeBackend
from eqprop.circuits import solve
from eqprop.circuits.energy import node_conductance
from eqprop.circuits.gradient import resistive_exact_gradient
from eqprop.circuits.noise import ThermalNoise, draw, factor
from eqprop.circuits.small_signal import offsets
from eqprop.learning.eqprop import cosine, eqprop_gradient, run_phases
from eqprop.learning.outputs import OutputDir
from eqprop.learning.trainer import TrainConfig

TOLERANCE_FILES = ["tolerance.md", "tolerance.json", "gradient_noise.png"]
DEFAULT_CAPACITANCES = (1e-15, 1e-14, 1e-13, 1e-12)  # 1 fF to 1 pF
DEFAULT_BETAS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3)  # relative to the mean output-node conductance


def _drop_noise(net, P, c):
    """Variance of the noise of every conductance's drop of connection c, (n_rows, n_j), and of its biases (n_j,),
    from one sample's covariance P of the free nodes."""
    off = offsets(net)
    j = slice(off[c], off[c + 1])
    pj = np.diag(P)[j]
    if c == 0:
        return np.broadcast_to(pj, net.weights[0].shape), pj
    a = net.gains[c]
    i = slice(off[c - 1], off[c])
    pi, cross = np.diag(P)[i], P[i, j]
    var = a * a * pi[:, None] + pj[None, :] - 2 * a * cross
    if net.hidden_pairs:  # the inverting half drives -a V_i: its drop noise is -a d_i - d_j
        var = np.vstack([var, a * a * pi[:, None] + pj[None, :] + 2 * a * cross])
    return var, pj


def _drops(net, x, layers, b, c):
    """Drops across connection c's conductances (n_rows, n_j) and its biases (2, n_j) for sample b."""
    vb = net.bias_voltage
    v = layers[c][b]
    u = net.encode_inputs(x[b:b + 1])[0] if c == 0 else net.driven(c, layers[c - 1][b:b + 1])[0]
    a = net.gains[c]
    return a * u[:, None] - v[None, :], np.stack([v - vb, v + vb])


def gradient_theory(net, x, plus, minus, cov_plus, cov_minus, beta, cost_weight) -> tuple:
    """(mean shift, variance linear in the noise variance, variance quadratic in it) of the centered estimate's
    noise for every parameter (lists in the estimate's order: weights, then biases), from each sample's
    covariances in the two nudged phases (module notes). Scaling every covariance by r scales the three by
    r, r and r^2."""
    kappa = net.energy_weights
    B = x.shape[0]
    scale = 1.0 / (2 * beta * cost_weight * B)
    shift = [np.zeros_like(w) for w in net.weights] + [np.zeros_like(b) for b in net.biases]
    var = [np.zeros_like(w) for w in net.weights] + [np.zeros_like(b) for b in net.biases]
    quad = [np.zeros_like(w) for w in net.weights] + [np.zeros_like(b) for b in net.biases]
    L = net.n_connections
    for b in range(B):
        for c in range(L):
            k = 0.5 * kappa[c]
            dw_p, db_p = _drops(net, x, plus.layers, b, c)
            dw_m, db_m = _drops(net, x, minus.layers, b, c)
            sw_p, sb_p = _drop_noise(net, cov_plus[b], c)
            sw_m, sb_m = _drop_noise(net, cov_minus[b], c)
            shift[c] += k * (sw_p - sw_m)
            var[c] += k * k * 4 * (dw_p**2 * sw_p + dw_m**2 * sw_m)
            quad[c] += k * k * 2 * (sw_p**2 + sw_m**2)
            shift[L + c] += k * (sb_p - sb_m)[None, :]
            var[L + c] += k * k * 4 * (db_p**2 * sb_p + db_m**2 * sb_m)
            quad[L + c] += k * k * 2 * (sb_p**2 + sb_m**2)
    s2 = scale * scale
    return [scale * s for s in shift], [s2 * v for v in var], [s2 * q for q in quad]


def reference_network(seed: int = 0, hidden=(100,), epochs: int = 1):
    """The digits network the trainer builds, trained ``epochs`` without noise, and a batch of 64 test samples."""
    from eqprop.learning.data import load_for
    from eqprop.learning.runs import train

    cfg = TrainConfig(dataset="digits", hidden=list(hidden), epochs=epochs, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        from eqprop.learning.runs import load_run

        cfg, _, net = load_run(Path(tmp) / "run")
    ds = load_for(cfg)
    x = ds.x_test[:64] * cfg.input_scale
    y = cfg.target_amplitude * np.where(ds.y_test[:64, None] == np.arange(ds.n_classes), 1.0, -1.0)
    return net, x, y


def gradient_rows(net, x, y, capacitances=DEFAULT_CAPACITANCES, betas=DEFAULT_BETAS, draws: int = 10, seed: int = 0,
                  log=print) -> list:
    native = NativeBackend(net, tol=1e-12)
    exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    g_out = float(node_conductance(net)[-1].mean())
    rng = np.random.default_rng(seed)
    ref = ThermalNoise(1e-12)  # window 0: the covariance scales as 1 / C, so one factorisation serves every C
    rows = []
    for rel in betas:
        beta = rel * g_out
        ph = run_phases(native, x, y, beta, "centered")
        g0 = eqprop_gradient(native, ph)
        base_p, base_m = ref.base(net, beta), ref.base(net, -beta)
        cov_p = [ref.covariance(net, v, beta, base_p) for v in ph.plus.voltages]
        cov_m = [ref.covariance(net, v, -beta, base_m) for v in ph.minus.voltages]
        f_p, f_m = np.stack([factor(P) for P in cov_p]), np.stack([factor(P) for P in cov_m])
        shift1, var1, quad1 = gradient_theory(net, x, ph.plus, ph.minus, cov_p, cov_m, beta, native.cost_weight)
        row = {"beta_rel": rel, "beta": beta, "noiseless_cosine": cosine(g0, exact), "by_capacitance": {}}
        for C in capacitances:
            r = 1e-12 / C  # variance ratio to the reference
            mean = [g + r * s for g, s in zip(g0, shift1)]
            spread = sum(float((r * v + r * r * q).sum()) for v, q in zip(var1, quad1))
            gdot = sum(float((e * m).sum()) for e, m in zip(exact, mean))
            norm_g = np.sqrt(sum(float((e * e).sum()) for e in exact))
            norm_m2 = sum(float((m * m).sum()) for m in mean)
            theory = gdot / (norm_g * np.sqrt(norm_m2 + spread))
            measured = []
            for _ in range(draws):
                plus, minus = _noisy(ph.plus, f_p, np.sqrt(r), rng), _noisy(ph.minus, f_m, np.sqrt(r), rng)
                est = eqprop_gradient(native, type(ph)(ph.free, plus, minus, ph.beta))
                measured.append(cosine(est, exact))
            row["by_capacitance"][f"{C:g}"] = {"measured": float(np.mean(measured)),
                                              "measured_std": float(np.std(measured)), "theory": float(theory)}
        rows.append(row)
    _log_gradient(rows, capacitances, draws, log)
    return rows


def _noisy(eq, factors, amplitude, rng):
    import copy

    out = copy.copy(eq)
    out.voltages = eq.voltages + amplitude * draw(factors, rng.standard_normal(eq.voltages.shape))
    return out


def _log_gradient(rows, capacitances, draws, log) -> None:
    log(f"EqProp gradient (centered) vs the exact one under thermal noise, cosine: measured (mean of {draws} draws) / "
        "theory")
    head = "| beta (x output G) | no noise | " + " | ".join(f"C = {C:g} F" for C in capacitances) + " |"
    log(head)
    log("|---" * (len(capacitances) + 2) + "|")
    for row in rows:
        cells = [f"{row['by_capacitance'][f'{C:g}']['measured']:.3f} / {row['by_capacitance'][f'{C:g}']['theory']:.3f}"
                 for C in capacitances]
        log(f"| {row['beta_rel']:g} | {row['noiseless_cosine']:.4f} | " + " | ".join(cells) + " |")
    best = []
    for C in capacitances:
        r = max(rows, key=lambda q: q["by_capacitance"][f"{C:g}"]["theory"])
        best.append(f"{C:g} F: beta {r['beta_rel']:g}")
    log("best beta by the theory: " + "; ".join(best))


def accuracy_rows(capacitances=DEFAULT_CAPACITANCES, window: float = 0.0, epochs: int = 10, seed: int = 0,
                  hidden=(100,), best_beta=None, log=print) -> list:
    """Test accuracy per capacitance at the default beta and, where ``best_beta`` ({capacitance: beta}) names
    another, at that one too (the gradient table's best)."""
    from eqprop.learning.runs import train

    default_beta = TrainConfig().resolve().beta
    log(f"digits, native backend, hidden {list(hidden)}, {epochs} epochs, seed {seed}: every measured equilibrium of "
        f"the training carries the thermal noise of nodes of capacitance C"
        + (f", averaged over {window:g} s" if window else " (instantaneous samples)"))
    log(f"| node capacitance | kT/C rms | test accuracy, beta {default_beta:g} (default) | the gradient's best beta | "
        "test accuracy there |")
    log("|---|---|---|---|---|")
    rows = []

    def run(C, beta):
        cfg = TrainConfig(dataset="digits", hidden=list(hidden), epochs=epochs, seed=seed, noise_capacitance=C,
                          noise_window=window if C is not None else 0.0, beta=beta)
        with tempfile.TemporaryDirectory() as tmp:
            return train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)["test_accuracy"]

    for C in (None, *capacitances):
        acc = run(C, default_beta)
        rms = ThermalNoise(C).equipartition_std if C is not None else 0.0
        other = (best_beta or {}).get(C)
        row = {"capacitance": C, "rms": rms, "beta": default_beta, "test_accuracy": acc}
        cells = "- | -"
        if other is not None and other != default_beta:
            row.update(best_beta=other, best_beta_test_accuracy=run(C, other))
            cells = f"{other:g} | {row['best_beta_test_accuracy']:.4f}"
        rows.append(row)
        log(f"| {'none' if C is None else f'{C:g} F'} | {rms * 1e6:.1f} uV | {acc:.4f} | {cells} |")
    return rows


def best_betas(rows, capacitances) -> dict:
    """{capacitance: the relative beta whose theory cosine is highest} from ``gradient_rows``."""
    return {C: max(rows, key=lambda r: r["by_capacitance"][f"{C:g}"]["theory"])["beta_rel"] for C in capacitances}


def run_tolerance(out_dir, capacitances=DEFAULT_CAPACITANCES, betas=DEFAULT_BETAS, draws=10, epochs=10, seed=0,
                  window=0.0, log=print) -> dict:
    output = OutputDir(out_dir, "tolerance", TOLERANCE_FILES).check()  # refused before anything runs
    for C in capacitances:
        ThermalNoise(C)  # each capacitance checked before the long part
    lines = []

    def both(text=""):
        lines.append(text)
        log(text)

    net, x, y = reference_network(seed)
    grads = gradient_rows(net, x, y, capacitances, betas, draws, seed, both)
    both()
    acc = accuracy_rows(capacitances, window, epochs, seed, best_beta=best_betas(grads, capacitances), log=both)
    result = {"gradient": grads, "accuracy": acc}
    with output as out:
        out.write_text("tolerance.md", "\n".join(lines) + "\n")
        out.write_text("tolerance.json", json.dumps(result, indent=1))
        _plot(out, grads, capacitances)
    return result


def _plot(out, rows, capacitances) -> None:
    from eqprop.learning.rundir import figure

    fig, (ax,) = figure(6, 4)
    b = [r["beta_rel"] for r in rows]
    ax.plot(b, [r["noiseless_cosine"] for r in rows], "k-", label="no noise")
    for C in capacitances:
        key = f"{C:g}"
        line, = ax.plot(b, [r["by_capacitance"][key]["theory"] for r in rows], "-", label=f"C = {C:g} F (theory)")
        ax.plot(b, [r["by_capacitance"][key]["measured"] for r in rows], "o", color=line.get_color())
    ax.set(xscale="log", xlabel="beta / output-node conductance", ylabel="cosine with the exact gradient",
           title="EqProp gradient under thermal noise (dots: measured)")
    ax.legend(fontsize=7)
    out.savefig("gradient_noise.png", fig, dpi=120)
