"""``eqprop nonideal``: one training run per programming model, same network and seed: what each costs."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from eqprop.learning.programming import PRESETS, preset
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig


def nonideal_rows(dataset="digits", data=None, hidden=(100,), epochs=10, seed=0, devices=None, log=print) -> list:
    log(f"dataset {dataset}, hidden {list(hidden)}, {epochs} epochs, seed {seed}, native backend; g_max = 2 x the "
        "largest initial conductance")
    log("| device model | bounds | levels | write noise | asym. (dep/pot) | soft bounds | d2d | test accuracy |")
    log("|---|---|---|---|---|---|---|---|")
    rows = []
    for name in devices or PRESETS:
        cfg = TrainConfig(dataset=dataset, data=data, hidden=list(hidden), epochs=epochs, device=name, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            last = train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        d = preset(name, 1.0)
        bounds = "none" if not np.isfinite(d.g_max) else f"[{d.g_min:g}, 1] g_max"
        rows.append({"device": name, "test_accuracy": last["test_accuracy"]})
        log(f"| {name} | {bounds} | {d.levels or 'continuous'} | {d.write_noise:g} | {d.depression / d.potentiation:g} "
            f"| {d.soft_bounds} | {d.d2d_variation:g} | {last['test_accuracy']:.4f} |")
    return rows
