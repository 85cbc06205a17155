"""Gradient fidelity: every backend's EqProp estimate against the exact gradient, versus beta.

One network, one batch, one exact gradient (implicit differentiation at the native free
equilibrium); for each backend, nudging (one-sided, centered) and beta: the cosine similarity and
the relative error of the estimate. ``eqprop gradcheck`` prints the table and writes a PNG and a JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from eqprop.circuits import ShockleyDiode, layered, solve
from eqprop.circuits.energy import node_conductance

from eqprop.backends.native import NativeBackend
from eqprop.circuits.gradient import resistive_exact_gradient
from eqprop.learning.eqprop import cosine, eqprop_gradient, relative_error, run_phases

DEFAULT_BETAS = (1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # relative to the mean output-node conductance


@dataclass
class FidelityRow:
    backend: str
    nudging: str
    beta_rel: float
    beta: float  # siemens
    cosine: float
    relative_error: float
    setting: str = ""  # e.g. the SPICE tolerance


def check_network(seed: int = 0):
    """A small Kendall-style network with Shockley diodes (so every backend, ngspice too, can run it)."""
    net = layered([32, 16, 10], diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (32, net.n_features))
    y = 0.05 * np.where(rng.integers(0, net.n_targets, 32)[:, None] == np.arange(net.n_targets), 1.0, -1.0)
    return net, x, y


def fidelity(backends: dict, net, x, y, betas=DEFAULT_BETAS, nudgings=("positive", "centered"), exact=None) -> list:
    """Rows for every backend (name -> (backend, setting)), nudging and relative beta.

    ``exact``: the exact gradient when the caller has it already (else computed at the native equilibrium).
    """
    if exact is None:
        exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    g_out = float(node_conductance(net)[-1].mean())
    rows = []
    for name, (backend, setting) in backends.items():
        for nudging in nudgings:
            for b in betas:
                est = eqprop_gradient(backend, run_phases(backend, x, y, b * g_out, nudging))
                rows.append(FidelityRow(name, nudging, b, b * g_out, cosine(est, exact),
                                        relative_error(est, exact), setting))
    return rows


SPICE_SETTINGS = ((1e-3, 1e-3), (1e-6, 1e-6), (1e-9, 1e-9))  # (reltol, sweep_tol V): loose to the default


GRADCHECK_FILES = ("gradient_fidelity.json", "gradient_fidelity.png", "gradient_fidelity.md")


def run_gradcheck(out_dir, with_spice: bool = True, spice_settings=SPICE_SETTINGS, betas=DEFAULT_BETAS,
                  log=print) -> list:
    from eqprop.learning.outputs import OutputDir

    output = OutputDir(out_dir, "gradcheck", GRADCHECK_FILES).check()  # refused before anything runs
    net, x, y = check_network()
    backends = {"native": (NativeBackend(net, tol=1e-13), "tol 1e-13 V")}
    if with_spice:
        from eqprop.netlists import SpiceOptions

        from eqprop.backends.spice import SpiceBackend
        for reltol, sweep_tol in spice_settings:
            options = SpiceOptions(reltol=reltol, sweep_tol=sweep_tol)
            backends[f"ngspice reltol={reltol:g} settle={sweep_tol:g}V"] = (
                SpiceBackend(net, options=options, workers=1), f"reltol {reltol:g}, sweep_tol {sweep_tol:g} V")
    rows = fidelity(backends, net, x, y, betas)
    table = format_table(rows)
    with output:
        output.write_text("gradient_fidelity.json", json.dumps([asdict(r) for r in rows], indent=1))
        _plot(rows, output, "gradient_fidelity.png")
        output.write_text("gradient_fidelity.md", table + "\n")
    log(table)
    return rows


def format_table(rows) -> str:
    lines = ["| backend | nudging | beta (rel.) | beta (S) | cosine | 1 - cosine | relative error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.backend} | {r.nudging} | {r.beta_rel:g} | {r.beta:.2e} | {r.cosine:.6f} | "
                     f"{1 - r.cosine:.1e} | {r.relative_error:.2e} |")
    best = {}
    for r in rows:
        key = (r.backend, r.nudging)
        if key not in best or r.cosine > best[key].cosine:
            best[key] = r
    lines.append("")
    lines.append("best beta per backend and nudging: " + "; ".join(
        f"{k[0]} {k[1]}: cosine {v.cosine:.6f} at beta {v.beta_rel:g}" for k, v in best.items()))
    return "\n".join(lines)


def _plot(rows, output, name) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    keys = sorted({(r.backend, r.nudging) for r in rows})
    for backend, nudging in keys:
        sel = [r for r in rows if r.backend == backend and r.nudging == nudging]
        style = "-" if nudging == "centered" else "--"
        label = f"{backend}, {nudging}"
        axes[0].plot([r.beta_rel for r in sel], [1 - r.cosine for r in sel], style, marker="o", label=label)
        axes[1].plot([r.beta_rel for r in sel], [r.relative_error for r in sel], style, marker="o", label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="beta / mean output conductance", ylabel="1 - cosine",
                title="EqProp estimate vs exact gradient")
    axes[1].set(xscale="log", yscale="log", xlabel="beta / mean output conductance", ylabel="relative error")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    output.savefig(name, fig, dpi=120)
    plt.close(fig)
