"""One harness over every backend: the same network, initialisation and batches; one report.

For the circuit backends (native, ngspice, Lava) the reference is the native numpy solver, the
digital twin of the circuit: equilibrium agreement per layer, the EqProp gradient against the exact
gradient (implicit differentiation at the native equilibrium), time per equilibrium, a short training
run, and the physical figures each can give (ngspice: static power, settling time and energy per
inference; Lava: graded messages per inference). The Hopfield reference of Scellier & Bengio (2017)
is a different model (hard-sigmoid units, signed weights), so it is compared on what it shares: its
EqProp gradient against its own exact gradient, its time per equilibrium and its training curve.
A backend that cannot run is a row that says why.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from eqprop import backends as registry
from eqprop.circuits import solve
from eqprop.learning.data import load
from eqprop.learning.eqprop import cosine, eqprop_gradient, relative_error, run_phases
from eqprop.learning.outputs import OutputDir
from eqprop.learning.rundir import clear_run
from eqprop.learning.runs import backend_class, build_network, make_backend, train
from eqprop.learning.trainer import TrainConfig

from .gradcheck import fidelity

BETA_SWEEP = (1e-3, 1e-2, 1e-1)  # relative to the mean output-node conductance
PLOTS = ("accuracy.png", "gradient.png", "equilibria.png", "conductances.png")
COMPARE_FILES = ("report.json", "report.md", "runs") + PLOTS
CHANCE_MARGIN = 0.15  # a final test accuracy below chance + this is flagged in the report


def compare(out_dir, *, dataset="digits", data=None, hidden=(32,), epochs=3, n_train=None, n_test=None, seed=0,
            batch=32, beta=0.01, backends=None, capacitance=1e-12, workers=1, lr=None, batch_size=None,
            log=print) -> dict:
    """``backends``: names from the registry (default: every one that settles the network as drawn, not the
    wired crossbars); ``batch_size``: of the training runs (default: each backend's own)."""
    output = OutputDir(out_dir, "compare", COMPARE_FILES).check()  # refused before anything runs
    backends = list(backends or [n for n, spec in registry.REGISTRY.items() if not spec.wires])
    for name in backends:
        registry.get(name)  # an unknown name fails here, before anything runs
    # One circuit for every backend: differential hidden layers only if every compared backend settles them.
    pairs = len(hidden) >= 2 and all(registry.get(name).hidden_pairs for name in backends)
    cfg = TrainConfig(dataset=dataset, data=data, hidden=list(hidden), epochs=epochs, n_train=n_train, n_test=n_test,
                      seed=seed, diode="shockley", diode_is=1e-7, workers=workers, lr=lr, hidden_pairs=pairs).validate()
    ds = load(dataset, data, n_train=n_train, n_test=n_test, seed=seed)
    if cfg.data is not None:
        cfg.data = str(Path(cfg.data).resolve())
    with output:  # the lock is held while the backends train into OUT/runs
        net = build_network(cfg, ds.n_features, ds.n_classes)
        ref_backend = make_backend(cfg, net.copy())
        x = ds.x_test[:batch] * cfg.input_scale
        y = ref_backend.targets(ds.y_test[:batch], ds.n_classes, cfg.target_amplitude)
        beta_abs = beta * ref_backend.beta_unit()
        ref = solve(net, x, tol=1e-13)
        exact, _ = ref_backend.exact_gradient(ref, y)
        report = {"config": {**cfg.to_dict(), "batch": batch, "beta_relative": beta, "beta": beta_abs,
                             "capacitance": capacitance, "sizes": list(net.sizes), "n_train": len(ds.x_train),
                             "n_test": len(ds.x_test), "n_classes": ds.n_classes},
                  "backends": {}, "equilibria": {}}
        for name in backends:
            log(f"compare: {name} ...")
            try:
                # the backend's own defaults; a backend without Shockley diodes (the Hopfield reference) keeps its own
                own_diode = cfg.diode in registry.get(name).diodes
                bcfg = replace(cfg, backend=name, lr=lr, beta=None, momentum=None, lr_decay=None, batch_size=batch_size,
                               nudging=None, tol=None, diode=cfg.diode if own_diode else "ideal",
                               diode_is=cfg.diode_is if own_diode else None).resolve()
                if backend_class(bcfg).family == "resistive" and own_diode:
                    row = _circuit_row(bcfg, net, x, y, beta_abs, ref, exact, capacitance, report)
                elif backend_class(bcfg).family == "resistive":  # e.g. loihi: no Shockley form; the same network with
                    # its own diodes, against native on that network
                    net_b = _with_diode(net, bcfg)
                    ref_b = solve(net_b, x, tol=1e-13)
                    exact_b, _ = make_backend(replace(cfg, diode=bcfg.diode, diode_is=None), net_b).exact_gradient(ref_b, y)
                    row = _circuit_row(bcfg, net_b, x, y, beta_abs, ref_b, exact_b, capacitance, report)
                    row["note"] = (f"{bcfg.diode} diodes ({name} has no {cfg.diode} form): compared with native on the "
                                   f"same conductances with {bcfg.diode} diodes")
                else:
                    row = _other_model_row(bcfg, ds, x, ds.y_test[:batch])
                cap = registry.get(name).compare_samples
                if cap:  # a slow backend trains and tests on a stated subset
                    bcfg = replace(bcfg, n_train=min(cap, len(ds.x_train)), n_test=min(cap, len(ds.x_test)))
                    row["note"] = (row.get("note", "") + f" trained and tested on the first {bcfg.n_train} / "
                                   f"{bcfg.n_test} images (slow backend)").strip()
                row["training"] = _train(bcfg, output / "runs" / name)
            except Exception as exc:  # a backend that cannot run is reported, never silently skipped
                row = {"available": False, "reason": f"{type(exc).__name__}: {exc}".strip()[:400]}
            report["backends"][name] = row
        output.write_text("report.json", json.dumps(_jsonable(report), indent=1))
        output.write_text("report.md", render(report))
        _plots(report, output)
    return report


def _with_diode(net, cfg):
    """``net`` with every clamp's diode replaced by cfg's (same conductances and rails)."""
    from dataclasses import replace as dc_replace

    from eqprop.backends.base import diode_from_config

    other = net.copy()
    other.neurons = [None if n is None else dc_replace(n, diode=diode_from_config(cfg)) for n in net.neurons]
    return other


def _circuit_row(cfg, net, x, y, beta_abs, ref, exact, capacitance, report) -> dict:
    backend = make_backend(cfg, net.copy())
    try:
        t0 = time.perf_counter()
        eq = backend.settle(x)
        seconds = (time.perf_counter() - t0) / len(x)
        per_layer = [{"max_abs": float(np.abs(a - b).max()), "mean_abs": float(np.abs(a - b).mean())}
                     for a, b in zip(eq.layers, ref.layers)]
        grad = eqprop_gradient(backend, run_phases(backend, x, y, beta_abs, "centered"))
        row = {"available": True, "seconds_per_equilibrium": seconds, "equilibrium_vs_native": per_layer,
               "gradient_cosine": cosine(grad, exact), "gradient_relative_error": relative_error(grad, exact),
               "gradient_vs_beta": [{"beta_relative": r.beta_rel, "cosine": r.cosine,
                                     "relative_error": r.relative_error}
                                    for r in fidelity({cfg.backend: (backend, "")}, net, x, y, BETA_SWEEP,
                                                      ("centered",), exact=exact)]}
        report["equilibria"][cfg.backend] = eq.voltages.tolist()
        row["physical"] = backend.physical_figures(x, capacitance=capacitance)
    finally:
        backend.close()
    return row


def _train(cfg, run_dir) -> dict:
    clear_run(run_dir)  # only this compare's own earlier run files; anything else is refused, never deleted
    t0 = time.perf_counter()
    train(cfg, run_dir, progress=False, log=lambda *_: None)
    history = json.loads((run_dir / "metrics.json").read_text())
    return {"test_accuracy": [h["test_accuracy"] for h in history], "seconds": time.perf_counter() - t0,
            "run_dir": str(run_dir), "lr": list(cfg.lr) if cfg.lr else None, "batch_size": cfg.batch_size}


def _other_model_row(cfg, ds, x, labels) -> dict:
    """A backend of another model family (the Hopfield reference): its own network, its own exact gradient."""
    net = build_network(cfg, ds.n_features, ds.n_classes)
    backend = make_backend(replace(cfg, tol=1e-12), net)
    y = backend.targets(labels, ds.n_classes, cfg.target_amplitude)
    t0 = time.perf_counter()
    free = backend.settle(x)
    seconds = (time.perf_counter() - t0) / len(x)
    exact, _ = backend.exact_gradient(free, y)
    if getattr(backend, "backprop", False):  # it learns by its exact gradient: nothing to estimate
        return {"available": True, "seconds_per_equilibrium": seconds, "equilibrium_vs_native": None,
                "note": "the same architecture, feed-forward, trained by backpropagation (its gradient is the exact "
                        "one)", "gradient_cosine": 1.0, "gradient_relative_error": 0.0, "physical": {}}
    grad = eqprop_gradient(backend, run_phases(backend, x, y, 1e-3, "centered"))  # units in [0, 1]
    return {"available": True, "seconds_per_equilibrium": seconds, "equilibrium_vs_native": None,
            "note": f"different model ({backend.family}): compared with its own exact gradient",
            "gradient_cosine": cosine(grad, exact), "gradient_relative_error": relative_error(grad, exact),
            "physical": {}}


def render(report) -> str:
    c = report["config"]
    lines = [f"# eqprop-hw compare: {c['dataset']}, network {'-'.join(map(str, c['sizes']))}",
             "",
             f"Shockley diodes (IS {c['diode_is']:g} A), rails {c['rails']}, gain {c['gain']}, seed {c['seed']}; "
             f"equilibria and gradients on {c['batch']} test samples; centered EqProp at beta = {c['beta_relative']:g} "
             f"x the mean output conductance ({c['beta']:.3g} S); {c['epochs']} training epochs per backend on "
             f"{c['n_train']} training images, tested on {c['n_test']}; learning rates per connection: "
             + "; ".join(f"{k} {r['training'].get('lr')}, batch {r['training'].get('batch_size')}"
                         for k, r in report["backends"].items() if r.get("available"))
             + " (the backend's rules unless --lr and --batch-size are given).",
             "",
             "| backend | status | eq. max abs diff vs native (V), per layer | eq. mean abs diff (V) | gradient cosine "
             "| gradient rel. error | s / equilibrium | final test accuracy | training s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["backends"].items():
        if not r.get("available"):
            lines.append(f"| {name} | not available: {r['reason']} | | | | | | | |")
            continue
        eqd = r.get("equilibrium_vs_native")
        mx = ", ".join(f"{d['max_abs']:.1e}" for d in eqd) if eqd else "n/a (different model)"
        mn = ", ".join(f"{d['mean_abs']:.1e}" for d in eqd) if eqd else "n/a"
        tr = r["training"]
        lines.append(f"| {name} | ok | {mx} | {mn} | {r['gradient_cosine']:.6f} | {r['gradient_relative_error']:.2e} | "
                     f"{r['seconds_per_equilibrium']:.2e} | {tr['test_accuracy'][-1]:.4f} | {tr['seconds']:.1f} |")
    chance = 1.0 / c["n_classes"]
    low = [k for k, r in report["backends"].items()
           if r.get("available") and r["training"]["test_accuracy"][-1] < chance + CHANCE_MARGIN]
    if low:
        lines += ["", f"**Warning: {', '.join(low)} ended near chance ({chance:.2f}): the training did not learn "
                      "(too few epochs or samples, or a learning rate too large; try --lr).**"]
    notes = [f"- {name}: {r['note']}" for name, r in report["backends"].items() if r.get("available") and r.get("note")]
    if notes:
        lines += [""] + notes
    physics = [f"| {name} | " + "; ".join(f"{k} {_fmt(v)}" for k, v in r["physical"].items()) + " |"
               for name, r in report["backends"].items() if r.get("available") and r.get("physical")]
    if physics:
        lines += ["", "## Physical figures", "", "| backend | figures |", "|---|---|"] + physics
        energy = {name: r["physical"]["energy_per_inference_j"] for name, r in report["backends"].items()
                  if r.get("available") and "energy_per_inference_j" in r.get("physical", {})}
        if len(energy) > 1:
            lines += ["", "Energy per inference: " + "; ".join(f"{k} {v:.3g} J" for k, v in energy.items()) +
                      " (ngspice: the analog circuit's sources and amplifiers, measured in a transient; loihi: "
                      "counted synaptic ops, neuron updates and spikes times Loihi's published per-op energies, "
                      "Davies et al. 2018; the digital figure includes every time step of the schedule)."]
    sweeps = {k: r["gradient_vs_beta"] for k, r in report["backends"].items() if r.get("gradient_vs_beta")}
    if sweeps:
        lines += ["", "## Gradient cosine versus beta (centered)", "",
                  "| beta (relative) | " + " | ".join(sweeps) + " |", "|---|" + "---|" * len(sweeps)]
        for i, rel in enumerate(BETA_SWEEP):
            lines.append(f"| {rel:g} | " + " | ".join(f"{v[i]['cosine']:.6f}" for v in sweeps.values()) + " |")
    lines += ["", "Plots: `accuracy.png` (test accuracy per epoch), `gradient.png` (1 - cosine versus beta), "
              "`equilibria.png` (each backend's node voltages against native), `conductances.png` (trained "
              "conductances). Every number: `report.json`."]
    return "\n".join(lines) + "\n"


def _plots(report, output) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = {k: r for k, r in report["backends"].items() if r.get("available")}
    with _figure(output, "accuracy.png", (5, 3.5), plt) as ax:
        for name, r in ok.items():
            acc = r["training"]["test_accuracy"]
            ax.plot(range(1, len(acc) + 1), acc, "o-", label=name)
        ax.set(xlabel="epoch", ylabel="test accuracy", title="training per backend")
    with _figure(output, "gradient.png", (5, 3.5), plt) as ax:
        for name, r in ok.items():
            sweep = r.get("gradient_vs_beta") or []
            if sweep:
                ax.plot([p["beta_relative"] for p in sweep], [max(1 - p["cosine"], 1e-16) for p in sweep], "o-",
                        label=name)
        ax.set(xscale="log", yscale="log", xlabel="beta / mean output conductance", ylabel="1 - cosine",
               title="EqProp vs exact gradient (centered)")
    eqs = report["equilibria"]
    with _figure(output, "equilibria.png", (4.5, 4.5), plt) as ax:
        if "native" in eqs:
            ref = np.asarray(eqs["native"]).ravel()
            for name, v in eqs.items():
                if name != "native":
                    ax.plot(ref, np.asarray(v).ravel(), ".", ms=2, label=name)
            ax.plot([ref.min(), ref.max()], [ref.min(), ref.max()], "k-", lw=0.5)
        ax.set(xlabel="native node voltage (V)", ylabel="backend node voltage (V)", title="equilibria vs native")
    from eqprop.learning.runs import load_run
    with _figure(output, "conductances.png", (5, 3.5), plt) as ax:
        for name, r in ok.items():
            if r.get("equilibrium_vs_native") is None:  # another model family: no conductances
                continue
            trained = load_run(r["training"]["run_dir"])[2]
            ax.hist(trained.weights[0].ravel() * 1e9, bins=60, histtype="step", label=name)
        ax.set(xlabel="G (nS), first layer", ylabel="count", title="trained conductances")


class _figure:
    """One axes, saved to ``path`` with a legend when the block ends."""

    def __init__(self, output, name, size, plt):
        self.output, self.name, self.plt = output, name, plt
        self.fig, self.ax = plt.subplots(figsize=size)

    def __enter__(self):
        return self.ax

    def __exit__(self, *exc):
        if self.ax.get_legend_handles_labels()[0]:
            self.ax.legend()
        self.fig.tight_layout()
        self.output.savefig(self.name, self.fig, dpi=120)
        self.plt.close(self.fig)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
