"""``eqprop report RUN...``: the results table of run directories, from their own config, metrics and provenance.

Every figure in it is read from the runs (``config.json``, ``metrics.json``, ``provenance.json``), so a table in
the docs is generated, not typed. Written as ``results.md`` and ``results.json`` with ``--out``, printed always.
"""
from __future__ import annotations

import json
from pathlib import Path

from eqprop.learning.rundir import RunError, code_version, load_config, machine, read_parsed, read_provenance

REPORT_FILES = ("results.md", "results.json")


def run_row(run_dir) -> dict:
    """One run's figures: what it is, how far it trained, its final and best test error, where it ran."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    history = read_parsed(run_dir / "metrics.json", json.loads, json.JSONDecodeError, RunError,
                          missing=f"{run_dir} has no metrics.json: it has not finished an epoch yet",
                          bad="{path} is not valid JSON ({exc}); restore it")
    if not isinstance(history, list) or not history or not all(isinstance(h, dict) for h in history):
        raise RunError(f"{run_dir / 'metrics.json'} holds no epochs; restore it")
    try:
        last = history[-1]
        best = min(history, key=lambda h: 1 - h["test_accuracy"])
        row = {"run": str(run_dir), "dataset": cfg.dataset, "backend": cfg.backend, "hidden": list(cfg.hidden),
               "parts": _parts(cfg),
               "augmentation": f"shift {cfg.shift}" if cfg.shift else "none",
               "epochs": last["epoch"], "epochs_planned": cfg.epochs,
               "test_error": 100 * (1 - last["test_accuracy"]), "train_accuracy": 100 * last["train_accuracy"],
               "best_test_error": 100 * (1 - best["test_accuracy"]), "best_epoch": best["epoch"],
               "seconds": float(sum(h["seconds"] for h in history))}
    except (KeyError, TypeError) as exc:
        raise RunError(f"{run_dir / 'metrics.json'} lacks a field ({exc}); restore it") from None
    starts = read_provenance(run_dir)
    first = starts[0] if starts and isinstance(starts[0], dict) else {}
    code = first.get("code") or {}
    row.update({"recipe": first.get("recipe"), "commit": code.get("commit"), "dirty": code.get("dirty"),
                "machine": first.get("machine"), "starts": len(starts), "config": cfg.to_dict()})
    return row


def _parts(cfg) -> list:
    """What the run's circuit has beyond the defaults: its diodes and their rails, its amplifiers, its thermal noise,
    its training's grounding switches (dropout), its weight decay, its crossbar wires."""
    from eqprop.learning.trainer import TrainConfig

    parts = []
    if getattr(cfg, "diode", "ideal") not in (None, "ideal"):
        parts.append(f"{cfg.diode} diodes")
    rails = getattr(cfg, "rails", None)
    if rails is not None and tuple(rails) != tuple(TrainConfig.rails):
        parts.append(f"rails {rails[0]:g} / {rails[1]:g} V")
    amp = getattr(cfg, "amplifier", None)
    if isinstance(amp, str) and amp.strip().endswith(".json"):
        parts.append(f"transistor amplifiers ({Path(amp.strip()).name})")
    elif amp not in (None, "", "ideal"):
        parts.append(f"op-amps {amp}")
    if getattr(cfg, "noise_capacitance", None) is not None:
        parts.append(f"noise of {cfg.noise_capacitance:g} F nodes")
    if getattr(cfg, "dropout", 0.0):
        parts.append(f"dropout {cfg.dropout:g}")
    if getattr(cfg, "weight_decay", 0.0):
        parts.append(f"weight decay {cfg.weight_decay:g}")
    if getattr(cfg, "wire", None) is not None:
        parts.append(f"crossbar wires {cfg.wire:g} ohm per segment")
    return parts


def render(rows, generated: dict) -> str:
    lines = ["| run | recipe | data | network | backend | augmentation | epochs | test error | best (epoch) | "
             "train accuracy | training time | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        epochs = f"{r['epochs']}" + (f" of {r['epochs_planned']}" if r["epochs"] != r["epochs_planned"] else "")
        commit = (r["commit"] or "unknown")[:8] + (" (modified)" if r["dirty"] else "")
        network = f"hidden {'-'.join(map(str, r['hidden']))}" + "".join(f", {p}" for p in r.get("parts", []))
        lines.append(f"| {r['run']} | {r['recipe'] or '-'} | {r['dataset']} | {network} | "
                     f"{r['backend']} | {r['augmentation']} | {epochs} | {r['test_error']:.2f}% | "
                     f"{r['best_test_error']:.2f}% ({r['best_epoch']}) | {r['train_accuracy']:.2f}% | "
                     f"{r['seconds']:,.0f} s | {commit} |")
    machines = sorted({_machine(r["machine"]) for r in rows if r["machine"]})
    lines += ["", f"Trained on: {'; '.join(machines) or 'unknown'}. Training time is the sum of the epochs' seconds. "
              f"Table by `eqprop report` (commit {(generated['code']['commit'] or 'unknown')[:8]})."]
    return "\n".join(lines) + "\n"


def _machine(m) -> str:
    return f"{m.get('cpu') or 'unknown CPU'}, {m.get('cores')} cores" if isinstance(m, dict) else str(m)


def report(runs, out=None, log=print) -> dict:
    from eqprop.learning.outputs import OutputDir

    output = OutputDir(out, "report", REPORT_FILES).check() if out is not None else None
    rows = [run_row(r) for r in runs]  # a run that cannot be read fails here, before anything is written
    generated = {"code": code_version(), "machine": machine()}
    text = render(rows, generated)
    log(text.rstrip())
    result = {"generated": generated, "runs": rows}
    if output is not None:
        with output:
            output.write_text("results.md", text)
            output.write_text("results.json", json.dumps(result, indent=1))
        log(f"wrote {output / 'results.md'} and {output / 'results.json'}")
    return result
