"""The wired backend: EqProp on crossbars with resistive wires. Its estimate is the wired circuit's own gradient
(finite differences of that circuit's loss), and it becomes the native backend as the wires vanish."""
import numpy as np
import pytest

from eqprop.backends.native import NativeBackend
from eqprop.backends.wired import WiredBackend
from eqprop.circuits import layered
from eqprop.learning.eqprop import eqprop_gradient, run_phases


def _loss(backend, x, y):
    pred = backend.settle(x).prediction
    return 0.5 * ((pred - y) ** 2).sum(1).mean()


def _data(seed, b=4, f=4, k=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (b, f)), rng.uniform(-0.05, 0.05, (b, k))


@pytest.mark.parametrize("kw", [dict(diode=None, gain=2), dict(diode=None, gain=2, hidden_pairs=True)])
def test_the_estimate_is_the_wired_circuits_own_gradient(kw):
    net = layered([8, 6, 5, 4], seed=11, **kw)
    x, y = _data(12)
    wired = WiredBackend(net, 2e4)  # wires that move the volts by tens of millivolts
    est = eqprop_gradient(wired, run_phases(wired, x, y, 1e-3 * wired.beta_unit()))
    native = NativeBackend(net)
    ideal = eqprop_gradient(native, run_phases(native, x, y, 1e-3 * native.beta_unit()))
    params = wired.parameters()
    rng = np.random.default_rng(13)
    worst, apart = 0.0, 0.0
    for p, (g, gi) in enumerate(zip(est, ideal)):
        for idx in [tuple(rng.integers(0, s) for s in g.shape) for _ in range(4)]:
            base, h = params[p][idx], 1e-4 * params[p][idx]
            params[p][idx] = base + h
            up = _loss(wired, x, y)
            params[p][idx] = base - h
            down = _loss(wired, x, y)
            params[p][idx] = base
            fd = (up - down) / (2 * h)
            scale = np.abs(g).max()
            worst = max(worst, abs(g[idx] - fd) / scale)
            apart = max(apart, abs(gi[idx] - fd) / scale)
    assert worst < 1e-3  # EqProp on the wired circuit: its own gradient
    assert apart > 10 * worst  # and not the ideal network's


def test_vanishing_wires_are_the_native_backend():
    net = layered([8, 6, 4], seed=14, gain=3)
    x, y = _data(15)
    native, wired = NativeBackend(net), WiredBackend(net, 1e-2)
    a = eqprop_gradient(native, run_phases(native, x, y, 0.1 * native.beta_unit()))
    b = eqprop_gradient(wired, run_phases(wired, x, y, 0.1 * native.beta_unit()))
    for ga, gb in zip(a, b):
        assert np.abs(ga - gb).max() < 1e-4 * np.abs(ga).max()


def test_train_on_the_wired_backend_and_evaluate_it(tmp_path):
    import json

    from eqprop.experiments.cli import main

    run = tmp_path / "run"
    assert main(["train", "--backend", "wired", "--wire", "3000", "--hidden", "8", "--epochs", "1", "--n-train",
                 "64", "--n-test", "20", "--out", str(run), "--no-progress"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["wire"] == 3000 and cfg["backend"] == "wired"
    assert main(["evaluate", str(run)]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    assert "crossbar wires 3000 ohm per segment" in (tmp_path / "rep" / "results.md").read_text()
    assert main(["train", "--wire", "3000", "--out", str(tmp_path / "no")]) == 2  # native: refused, nothing written
    assert not (tmp_path / "no").exists()
    assert main(["train", "--backend", "wired", "--out", str(tmp_path / "no")]) == 2


def test_a_step_programs_the_kept_layout_once(monkeypatch):
    """The crossbars are laid out at the first solve; each step then programs them once for its three phases (no
    graph is built, checked or compiled again), and the phases give the volts that each gets alone; a change of the
    circuit (a gain) lays them out again."""
    import eqprop.circuits.parasitics as parasitics

    net = layered([8, 6, 4], seed=16, gain=3)
    x, y = _data(17)
    wired = WiredBackend(net, 1e3)
    beta = 0.1 * wired.beta_unit()
    alone = [wired.settle(x), wired.settle(x, y, beta), wired.settle(x, y, -beta)]
    calls = {"layout": 0, "program": 0, "compile": 0}
    layout, program, build = parasitics.Crossbars.__init__, parasitics.Crossbars.program, parasitics.compile_graph

    def counted(key, fn):
        def call(*a, **k):
            calls[key] += 1
            return fn(*a, **k)
        return call

    monkeypatch.setattr(parasitics.Crossbars, "__init__", counted("layout", layout))
    monkeypatch.setattr(parasitics.Crossbars, "program", counted("program", program))
    monkeypatch.setattr(parasitics, "compile_graph", counted("compile", build))
    ph = run_phases(wired, x, y, beta)
    assert calls == {"layout": 0, "program": 1, "compile": 0}
    for a, b in zip(alone, (ph.free, ph.plus, ph.minus)):
        np.testing.assert_allclose(b.voltages, a.voltages, atol=1e-12)
    net.gains = (1.0, 2.0)
    wired.settle(x)
    assert calls["layout"] == 1


def test_the_statistics_difference_keeps_its_digits_at_a_small_nudge():
    """At a nudge of 1e-9 the phases' volts agree to about 11 digits: the statistic's difference against the same
    sums done exactly (rational arithmetic on the same float64 volts) keeps 1e-12 relative, where the difference
    of the squared drops in float64 keeps about 1e-5."""
    from fractions import Fraction

    net = layered([8, 6, 4], seed=18, gain=3)
    x, y = _data(19)
    wired = WiredBackend(net, 1e3)
    ph = run_phases(wired, x, y, 1e-9 * wired.beta_unit())
    got = wired.statistics_difference(ph.plus, ph.minus)
    hi, lo = ph.plus.info["nodes"], ph.minus.info["nodes"]
    c = 1  # the hidden-to-output crossbar: its weights' rows, then its biases'
    w_ix, u_ix = ph.plus.info["crossings"][c]
    kappa = Fraction(float(net.energy_weights[c]))
    mine = np.vstack([got[c], got[net.n_connections + c]])
    naive = 0.5 * net.energy_weights[c] * (((hi[:, w_ix] - hi[:, u_ix]) ** 2) - ((lo[:, w_ix] - lo[:, u_ix]) ** 2)).sum(0)
    worst = naive_worst = 0.0
    for r in range(w_ix.shape[0]):
        for j in range(w_ix.shape[1]):
            a, b = w_ix[r, j], u_ix[r, j]
            exact = kappa / 2 * sum((Fraction(float(hi[k, a])) - Fraction(float(hi[k, b]))) ** 2
                                    - (Fraction(float(lo[k, a])) - Fraction(float(lo[k, b]))) ** 2
                                    for k in range(hi.shape[0]))
            scale = abs(float(exact))
            worst = max(worst, abs(float(Fraction(float(mine[r, j])) - exact)) / scale)
            naive_worst = max(naive_worst, abs(float(Fraction(float(naive[r, j])) - exact)) / scale)
    assert worst < 1e-12
    assert naive_worst > 1e3 * worst  # what the plain form would have lost
