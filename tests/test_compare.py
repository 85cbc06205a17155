"""eqprop compare: the report's numbers are the backends' own, and a backend that cannot run says why."""
import json

import numpy as np

import eqprop.experiments.compare as cmp
from eqprop.circuits import solve
from eqprop.learning.data import load
from eqprop.learning.runs import build_network
from eqprop.learning.trainer import TrainConfig
from eqprop.netlists import NgspiceCircuit


def test_report_numbers_match_the_backends(tmp_path, monkeypatch):
    real = cmp.make_backend

    def no_lava(cfg, net):
        if cfg.backend == "lava":
            raise RuntimeError("Lava is switched off for this test")
        return real(cfg, net)

    monkeypatch.setattr(cmp, "make_backend", no_lava)
    out = tmp_path / "report"
    report = cmp.compare(out, hidden=[8], epochs=1, n_train=48, n_test=24, batch=8,
                         backends=("native", "spice", "lava"), log=lambda *_: None)
    saved = json.loads((out / "report.json").read_text())
    assert saved["backends"]["lava"] == {"available": False, "reason": "RuntimeError: Lava is switched off for this test"}
    assert "lava | not available: RuntimeError: Lava is switched off" in (out / "report.md").read_text()
    assert [p["beta_relative"] for p in saved["backends"]["spice"]["gradient_vs_beta"]] == [1e-3, 1e-2, 1e-1]
    for f in ("accuracy.png", "gradient.png", "equilibria.png", "conductances.png"):
        assert (out / f).stat().st_size > 0
    # recompute the ngspice equilibrium difference independently
    cfg = TrainConfig(hidden=[8], n_train=48, n_test=24, diode="shockley", diode_is=1e-7)
    ds = load("digits", n_train=48, n_test=24, seed=0)
    net = build_network(cfg, ds.n_features, ds.n_classes)
    x = ds.x_test[:8]
    ref = solve(net, x, tol=1e-13)
    spice = NgspiceCircuit(net).equilibrium(x)
    for layer, (a, b) in enumerate(zip(spice.layers, ref.layers)):
        got = saved["backends"]["spice"]["equilibrium_vs_native"][layer]["max_abs"]
        assert np.isclose(got, np.abs(a - b).max(), rtol=0.5, atol=1e-12)
    np.testing.assert_allclose(np.asarray(saved["equilibria"]["spice"]), spice.voltages, atol=1e-9)
    assert saved["backends"]["spice"]["gradient_cosine"] >= 0.999
    history = json.loads((out / "runs" / "native" / "metrics.json").read_text())
    assert saved["backends"]["native"]["training"]["test_accuracy"] == [h["test_accuracy"] for h in history]
    assert saved["backends"]["spice"]["physical"]["static_power_w"] > 0
    assert saved["config"]["n_train"] == 48 and saved["config"]["n_test"] == 24


def test_report_warns_when_a_backend_ends_near_chance():
    row = {"available": True, "equilibrium_vs_native": None, "gradient_cosine": 1.0, "gradient_relative_error": 0.0,
           "seconds_per_equilibrium": 1e-3, "physical": {}, "training": {"test_accuracy": [0.1], "seconds": 1.0,
                                                                          "lr": [1.0, 0.5]}}
    good = dict(row, training=dict(row["training"], test_accuracy=[0.9]))
    config = {"dataset": "digits", "sizes": [128, 32, 20], "diode_is": 1e-7, "rails": [-0.05, 0.05], "gain": 4.0,
              "seed": 0, "batch": 8, "beta_relative": 0.01, "beta": 1e-9, "epochs": 1, "n_train": 600,
              "n_test": 300, "n_classes": 10, "capacitance": 1e-12}
    text = cmp.render({"config": config, "backends": {"a": row, "b": good}, "equilibria": {}})
    assert "Warning: a ended near chance" in text and "600 training images, tested on 300" in text
    assert "b ended" not in text and "a [1.0, 0.5]" in text
