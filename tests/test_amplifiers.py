"""Op-amp amplifiers: the native DC model against ngspice's own solve of the op-amp loop, against a hand-solved
loop, in training, in saved runs and netlists, and the bandwidth sweep's transients."""
import json

import numpy as np
import pytest

from eqprop.circuits import (ConvergenceError, NetworkError, OpAmp, ShockleyDiode, amplifier_model, kcl_residual,
                             layered, solve)
from eqprop.circuits.serialize import network_from_data, network_to_data

SPECS = ["a0=1e3", "a0=50 offset=0.01", "a0=1e3 rout=1e4", "a0=1e3 swing=0.25",
         "a0=200 swing=0.2 rout=1e3 offset=0.005 offset_sigma=0.01 seed=3", "a0=1e4 gbw=1e6 offset_sigma=0.02 gain_sigma=0.05"]


def net_for(spec, diode="shockley", seed=2, pairs=False):
    # siemens-range conductances (kiloohms): the op-amps' output resistance and the swing limits matter there;
    # ``pairs``: the second connection's amplifiers differential (an inverting op-amp loop drives each -a V half)
    return layered([16, 12, 10, 4], gain=4, diode=diode, amplifier=spec, seed=seed, g_range=(1e-5, 1e-4),
                   hidden_pairs=pairs)


def hand_output(a, a0, rout, swing, vos, v_in, load_g, load_i):
    """The op-amp loop solved as two equations (stage V_s = A0 (V_in + vos - V_o / a), clipped; V_o = V_s - rout I,
    I = load_g V_o - load_i), one amplifier at a time: a second derivation of ``OpAmp.output``."""
    out = np.empty_like(v_in)
    for k in np.ndindex(v_in.shape):
        g, i = load_g[k[-1]], load_i[k]
        # unsaturated: [1, A0/a; -1, 1 + rout g] [V_s; V_o] = [A0 (V_in + vos); rout i]
        m = np.array([[1.0, a0 / a], [-1.0, 1.0 + rout * g]])
        vs, vo = np.linalg.solve(m, [a0 * (v_in[k] + vos[k[-1]]), rout * i])
        if abs(vs) > swing:
            vo = (np.sign(vs) * swing + rout * i) / (1.0 + rout * g)
        out[k] = vo
    return out


def test_the_closed_loop_output_is_the_loop_solved_by_hand():
    rng = np.random.default_rng(0)
    for spec in ("a0=1e3 rout=1e4", "a0=30 swing=0.2 offset=0.01 rout=500", "a0=1e5 swing=1 offset_sigma=0.05 seed=9"):
        m = amplifier_model(spec)
        v_in = rng.uniform(-0.1, 0.1, (5, 7))
        load_g, load_i = rng.uniform(1e-4, 1e-3, 7), rng.uniform(-1e-4, 1e-4, (5, 7))
        vos = m.input_offsets(1, 7)
        want = hand_output(4.0, m.a0, m.rout, m.swing, vos, v_in, load_g, load_i)
        np.testing.assert_allclose(m.output(4.0, v_in, load_g, load_i, vos), want, rtol=1e-12, atol=1e-15)
    m = OpAmp(a0=1e3, rout=100)
    assert m.closed_loop_gain(4) == pytest.approx(4 / (1 + 4 / 1e3))  # a / (1 + a / A0)
    assert m.closed_loop_rout(4) == pytest.approx(100 / (1 + 1e3 / 4))


@pytest.mark.parametrize("pairs", [False, True], ids=["single-ended", "differential"])
@pytest.mark.parametrize("spec", SPECS)
def test_native_equilibrium_is_ngspices_op_amp_loop(spec, pairs):
    """ngspice solves the op-amp's gain stage, limiter, output resistance, feedback and CCCS as written in the
    subcircuit (the inverting loop's own for a differential layer's -a V half); the native solver uses the closed
    form. Free and both nudged phases, to 1e-9 V."""
    from eqprop.netlists import NgspiceCircuit

    net = net_for(spec, pairs=pairs)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (4, 8)), rng.uniform(-0.2, 0.2, (4, 2))
    circuit = NgspiceCircuit(net)
    for beta in (0.0, 3e-4, -3e-4):
        eq = solve(net, x, y, beta)
        assert np.abs(circuit.equilibrium(x, y, beta).voltages - eq.voltages).max() < 1e-9
        res = kcl_residual(net, np.hstack([x, -x]), eq.layers, y, beta)  # the physical KCL, op-amps included
        assert max(np.abs(r).max() for r in res) < 1e-13


def test_saturation_is_reached_and_a_large_a0_is_the_ideal_amplifier():
    x = np.random.default_rng(1).uniform(-1, 1, (6, 8))
    net = net_for("a0=1e3 swing=0.25")
    eq = solve(net, x)
    vo = net.amplifier_output(1, eq.layers[0], eq.layers[1])
    assert np.isclose(np.abs(vo), 0.25).any() and np.abs(vo).max() <= 0.25 + 1e-12  # some outputs limited
    ideal = solve(net_for(None), x).voltages
    gaps = [np.abs(solve(net_for(f"a0={a0:g}"), x).voltages - ideal).max() for a0 in (1e2, 1e4, 1e6)]
    assert gaps[0] > 10 * gaps[1] > 100 * gaps[2]  # the gain error a / A0 falls as 1 / A0
    assert gaps[2] < 1e-5


def test_offset_mismatch_is_one_die_per_seed():
    m = OpAmp(offset=1e-3, offset_sigma=5e-3, seed=4)
    a, b = m.input_offsets(1, 4000), m.input_offsets(2, 4000)
    assert not np.array_equal(a, b)  # each connection's amplifiers draw their own
    np.testing.assert_array_equal(a, OpAmp(offset=1e-3, offset_sigma=5e-3, seed=4).input_offsets(1, 4000))
    assert not np.array_equal(a, OpAmp(offset=1e-3, offset_sigma=5e-3, seed=5).input_offsets(1, 4000))
    assert abs(a.mean() - 1e-3) < 5e-4 and abs(a.std() - 5e-3) < 5e-4


def test_a_saved_network_and_its_netlist_keep_every_amplifier():
    from eqprop.netlists import to_netlist

    net = net_for("a0=300 rout=50 swing=0.3 offset_sigma=0.01 gain_sigma=0.03 seed=7 iq=1e-4 supply=3")
    back = network_from_data(*network_to_data(net))
    assert back.amplifier == net.amplifier
    text = to_netlist(net, np.zeros((1, 8))).text
    vos = [float(line.split("vos=")[1].split()[0]) for line in text.splitlines() if line.startswith("X_amp")]
    np.testing.assert_allclose(sorted(vos), sorted(np.concatenate([net.amplifier.input_offsets(c, net.sizes[c])
                                                                    for c in net.amplified])))
    fb = [float(line.split("fb=")[1]) for line in text.splitlines() if line.startswith("X_amp")]
    np.testing.assert_allclose(sorted(fb), sorted(np.concatenate([net.amplifier.gain_factors(c, net.sizes[c])
                                                                  for c in net.amplified])))
    assert abs(np.std(fb) - 0.03) < 0.015 and len(set(fb)) == len(fb)
    assert "op-amp amplifiers (A0 300" in text and net.amplifier.quiescent_power == pytest.approx(3e-4)
    # ideal amplifiers save and write as before
    plain = layered([8, 6, 4], gain=2)
    assert "amplifier" not in network_to_data(plain)[0]


def test_what_takes_ideal_amplifiers_refuses_op_amps_in_one_line():
    from eqprop.circuits.energy import energy
    from eqprop.neuromorphic.loihi.map import check_network

    net = net_for("a0=1e3")
    x = np.zeros((1, 8))
    eq = solve(net, x)
    for call in (lambda: energy(net, np.hstack([x, -x]), eq.layers), lambda: check_network(net)):
        with pytest.raises(NetworkError, match="ideal amplifiers") as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(NetworkError, match="no amplifiers"):
        layered([8, 6, 4], gain=1.0, amplifier="a0=1e3")
    for bad, match in (("a0=0.5", "a0 must be >= 1"), ("gbw=-1", "gbw must be positive"), ("swing=nan", "swing"),
                       ("a0", "key=value"), ("a0=x", "not a number"), ("offset_sigma=-1", "offset_sigma"),
                       ("seed=1.5", "seed"), ("swing=3 supply=4", "exceeds its supply"),
                       ("gain_sigma=0.5", "gain_sigma")):
        with pytest.raises(NetworkError, match=match):
            amplifier_model(bad)


def op_amp_graph(seed, amp, diode):
    """A random graph with amplified edges (an op-amp per driver and gain, as the netlist writer builds them), every
    free node with a plain conductance too (an op-amp alone cannot set its driver's voltage: a saturated one
    would push a fixed current into it)."""
    import networkx as nx

    from eqprop.circuits import DiodeClamp, GraphNetwork

    rng = np.random.default_rng(seed)
    n_free, n_feat = int(rng.integers(4, 10)), int(rng.integers(1, 4))
    g = nx.Graph(amplifier=amp)
    for k in range(n_feat):
        g.add_node(f"x{k}", role="input", feature=k, sign=1.0)
    g.add_node("vb", role="bias", voltage=float(rng.uniform(-1, 1)))
    clamp = DiodeClamp(diode, -0.2, 0.3)
    free = [f"n{i}" for i in range(n_free)]
    n_out = int(rng.integers(1, min(3, n_free) + 1))
    for i, n in enumerate(free):
        role = dict(role="output", readout=(i - (n_free - n_out), 1.0)) if i >= n_free - n_out else dict(role="hidden")
        g.add_node(n, neuron=clamp if rng.random() < 0.6 else None, **role)
    sources = [f"x{k}" for k in range(n_feat)] + ["vb"]
    everything = free + sources
    for _ in range(int(rng.integers(n_free, 3 * n_free))):
        a, b = rng.choice(everything, 2, replace=False)
        if a in sources and b in sources:
            continue
        attrs = {"g": float(rng.uniform(1e-5, 1e-4))}
        if rng.random() < 0.5 and a in free:
            attrs.update(gain=float(rng.choice([2.0, 3.0])), driver=str(a))
        g.add_edge(str(a), str(b), **attrs)
    for n in free:
        if not any("gain" not in d for _, _, d in g.edges(n, data=True)):
            g.add_edge(n, str(rng.choice([e for e in everything if e != n and not g.has_edge(n, e)])),
                       g=float(rng.uniform(1e-5, 1e-4)))
    for comp in list(nx.connected_components(g)):
        if not any(n in sources for n in comp):
            g.add_edge(sorted(comp)[0], str(rng.choice(sources)), g=float(rng.uniform(1e-5, 1e-4)))
    return GraphNetwork(g, n_features=n_feat, readout="nodes"), rng


def op_amp_graph_kcl(net, x, volts):
    """Net current leaving every free node, edge by edge, each op-amp (one per driver and gain) giving
    ``OpAmp.output`` of its driver and its load: independent of the solver's held-shift rounds."""
    g, m = net.graph, net.amplifier
    v = dict(volts)
    for n in net.sources:
        d = g.nodes[n]
        v[n] = d["sign"] * x[d["feature"]] if d["role"] == "input" else d["voltage"]
    groups = {}
    for a, b, d in g.edges(data=True):
        if "gain" in d:
            groups.setdefault((d["driver"], d["gain"]), []).append((b if d["driver"] == a else a, d["g"]))
    out = {n: 0.0 for n in volts}
    for (drv, gain), edges in groups.items():
        load_g, load_i = sum(gg for _, gg in edges), sum(gg * v[o] for o, gg in edges)
        vo = float(m.output(gain, np.array(v[drv]), load_g, np.array(load_i)))
        for o, gg in edges:
            if o in out:
                out[o] -= gg * (vo - v[o])
            if drv in out:
                out[drv] += gg * (vo - v[o]) / gain
    for a, b, d in g.edges(data=True):
        if "gain" not in d:
            for p, q in ((a, b), (b, a)):
                if p in out:
                    out[p] += d["g"] * (v[p] - v[q])
    for n in out:
        clamp = g.nodes[n].get("neuron")
        if clamp is not None:
            out[n] += float(clamp.current(v[n]))
    return out


def test_random_graphs_with_op_amps_are_ngspices():
    """The graph solver with op-amps (method='newton': their shifts from the ideal amplifier held, Anderson-
    accelerated rounds) on random graphs with amplified edges, saturating op-amps with output resistance and
    offset, Shockley and piecewise-linear clamps: ngspice to 1e-9 V, free and nudged, and the physical KCL computed
    edge by edge to 1e-15 A. Layered op-amp networks solved as graphs are the layered solver's to 1e-12 V."""
    from eqprop.netlists import NgspiceCircuit, SpiceError

    compared = 0
    for seed in range(30):
        for amp, diode in (("a0=200 rout=1e3 swing=0.4 offset=0.005", ShockleyDiode(i_s=1e-12)),
                           ("a0=30 rout=5e3 swing=0.2 offset=0.02", "pwl")):
            try:
                net, rng = op_amp_graph(seed, amp, diode)
            except NetworkError:  # a random loop of ideal amplifiers without an energy function
                continue
            x, y = rng.uniform(-1, 1, (3, net.n_features)), rng.uniform(-0.3, 0.3, (3, net.n_targets))
            circuit = NgspiceCircuit(net)
            for beta in (0.0, 1e-5):
                eq = solve(net, x, y, beta, tol=1e-13)
                if beta == 0.0:
                    for s in range(3):
                        kcl = op_amp_graph_kcl(net, x[s], dict(zip(eq.info["free_nodes"], eq.voltages[s])))
                        assert max(abs(c) for c in kcl.values()) < 1e-15, (seed, amp)
                try:
                    want = circuit.equilibrium(x, y, beta).voltages
                except SpiceError:  # ngspice's own start fails on a few of these (the native point passed KCL)
                    continue
                assert np.abs(want - eq.voltages).max() < 1e-9, (seed, amp, beta)
                compared += 1
    assert compared >= 40  # of 120 (some graphs have no energy function; ngspice fails a few)
    for spec in ("a0=1e3 rout=1e4", "a0=200 swing=0.2 rout=1e3 offset=0.005 offset_sigma=0.01 gain_sigma=0.05 seed=3"):
        net = net_for(spec, diode="shockley")
        x, y = np.random.default_rng(1).uniform(-1, 1, (3, 8)), np.random.default_rng(2).uniform(-0.2, 0.2, (3, 2))
        for beta in (0.0, 3e-4):
            a, b = solve(net, x, y, beta, tol=1e-13), solve(net, x, y, beta, tol=1e-13, method="newton")
            assert np.abs(a.voltages - b.voltages).max() < 1e-12


def test_a_loop_that_cannot_settle_in_the_sweeps_allowed_says_so():
    net = net_for("a0=20 rout=3e5 swing=0.2")  # a weak, saturating output stage: slow outer rounds
    with pytest.raises(ConvergenceError, match="did not converge"):
        solve(net, np.random.default_rng(0).uniform(-1, 1, (2, 8)), max_iter=30)


def test_training_with_op_amps_runs_resumes_and_exports(tmp_path, capsys):
    from eqprop.experiments.cli import main

    run = tmp_path / "run"
    args = ["train", "--hidden", "16", "--epochs", "2", "--n-train", "300", "--n-test", "100", "--amplifier",
            "a0=100 offset_sigma=2e-3 seed=1", "--out", str(run)]
    assert main(args[:4] + ["1"] + args[5:]) == 0
    assert json.loads((run / "config.json").read_text())["amplifier"] == "a0=100 offset_sigma=2e-3 seed=1"
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    whole = tmp_path / "whole"
    assert main(args[:-1] + [str(whole)]) == 0
    a = np.load(run / "checkpoint.npz")
    b = np.load(whole / "checkpoint.npz")
    keys = [k for k in a.files if k.startswith(("weights", "biases"))]
    assert len(keys) == 4
    for k in keys:  # resumed after epoch 1: bit for bit the uninterrupted run
        np.testing.assert_array_equal(a[k], b[k])
    assert json.loads((run / "metrics.json").read_text())[-1]["test_accuracy"] > 0.2  # learning (chance: 0.1)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    assert "hidden 16, op-amps a0=100 offset_sigma=2e-3 seed=1 |" in (tmp_path / "rep" / "results.md").read_text()
    assert main(["netlist", str(run), "--out", str(tmp_path / "net.cir")]) == 0
    assert "bidir_amp in out params: gain=1 vos=" in (tmp_path / "net.cir").read_text()
    for extra, match in ((["--backend", "loihi"], "ideal amplifiers only"), (["--gain", "1"], "without amplifiers")):
        assert main(args[:-1] + [str(tmp_path / "refused")] + extra) == 2, match
        assert match in capsys.readouterr().err
        assert not (tmp_path / "refused").exists()
    # two hidden layers: differential by default with op-amps too (an inverting loop drives each -a V half)
    deep, ideal = tmp_path / "deep", tmp_path / "ideal"
    common = ["train", "--hidden", "16", "16", "--epochs", "3", "--n-train", "300", "--n-test", "100"]
    assert main(common + ["--amplifier", "a0=100 offset_sigma=2e-3 seed=1", "--out", str(deep)]) == 0
    assert main(common + ["--out", str(ideal)]) == 0
    assert json.loads((deep / "config.json").read_text())["hidden_pairs"] is True
    got, want = (json.loads((r / "metrics.json").read_text()) for r in (deep, ideal))
    assert got[-1]["train_accuracy"] > 0.2  # learning (chance 0.1), as the ideal amplifiers' network does
    assert all(abs(g["train_accuracy"] - w["train_accuracy"]) <= 0.05 for g, w in zip(got, want))
    assert main(["netlist", str(deep), "--out", str(tmp_path / "deep.cir")]) == 0
    assert "bidir_inv params: gain=-" in (tmp_path / "deep.cir").read_text()


def test_differential_layers_take_op_amps_on_graphs_and_refuse_a_model_without_an_inverting_form():
    for spec in ("a0=1e3 rout=1e3", "a0=200 swing=0.2 rout=1e3 offset=0.005 offset_sigma=0.01 gain_sigma=0.05 seed=3"):
        net = net_for(spec, pairs=True)
        x = np.random.default_rng(0).uniform(-1, 1, (3, 8))
        layered_eq = solve(net, x, tol=1e-12)
        assert np.abs(solve(net.to_graph(), x, tol=1e-12).voltages - layered_eq.voltages).max() < 1e-11
        # the inverting half is the inverting loop, not a non-inverting one fed -V: its offset sees 1 + a, not a
    m = OpAmp(a0=1e3, offset=0.01)
    assert m.output(-4.0, 0.0, 0.0, 0.0) == pytest.approx(1e3 * 0.01 / (1 + 1e3 / 5))
    assert m.output(-4.0, 0.1, 0.0, 0.0) - m.output(-4.0, 0.0, 0.0, 0.0) == pytest.approx(-1e3 * 0.8 / (1 + 200) * 0.1)

    class NonInverting(OpAmp):
        inverting = False

    with pytest.raises(NetworkError, match="no inverting form"):
        layered([8, 6, 6, 4], gain=2.0, hidden_pairs=True, amplifier=NonInverting(a0=1e3))


def test_the_bandwidth_sweep_finds_slow_and_ringing_amplifiers():
    """A weak op-amp (GBW far below the nodes' bandwidth) settles many times slower than ideal amplifiers; one far
    above settles like them; with a large output resistance into kiloohm loads the loop rings. The final values
    are the native DC solve's."""
    pytest.importorskip("PySpice")
    from eqprop.experiments.amplifiers import bandwidth_rows

    net = layered([16, 12, 8], gain=4, diode="shockley", seed=1, g_range=(1e-5, 1e-4))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 8))
    out = bandwidth_rows(net, x, 1e-12, (1e6, 1e10), "a0=1e4", log=lambda *_: None)
    slow, fast = out["rows"]
    assert slow["verdict"] == "slow" and slow["slower"] > 5
    assert fast["verdict"] == "settles" and fast["slower"] < 1.2 and out["needed_gbw"] == 1e10
    assert fast["final_error"] < 1e-6
    ringing = bandwidth_rows(net, x, 1e-12, (1e9,), "a0=1e4 rout=1e4", log=lambda *_: None)["rows"][0]
    assert ringing["crossings"] > 1 and ringing["verdict"] == "rings"


def _stacked_kcl(net, x):
    from eqprop.circuits.small_signal import offsets

    off = offsets(net)
    src = np.hstack([x, -x])

    def F(v):  # the current leaving every free node at voltages v (the physical KCL, op-amps included)
        layers = [v[None, off[k]:off[k + 1]] for k in range(net.n_connections)]
        return np.concatenate([r[0] for r in kcl_residual(net, src, layers)])
    return F, off


@pytest.mark.parametrize("pairs", [False, True], ids=["single-ended", "differential"])
@pytest.mark.parametrize("spec", ["a0=50 rout=3e3 offset_sigma=0.01 gain_sigma=0.05", "a0=1e3 swing=0.25 rout=500",
                                  "a0=30 rout=1e4"])
def test_the_small_signal_model_is_the_circuit_differentiated(spec, pairs):
    """The Jacobian and the conductances' noise-injection matrix of op-amp networks (saturated amplifiers included)
    against finite differences of the physical KCL: dF/dV, and dF/dG = drop x (what a unit current through G
    injects) for every conductance."""
    from eqprop.circuits.small_signal import amplifier_slopes, conductance_noise, jacobian

    net = net_for(spec, diode="shockley", pairs=pairs)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 8))
    eq = solve(net, x, tol=1e-13)
    v0 = eq.voltages[0]
    if "swing" in spec:
        assert any((alpha == 0).any() for alpha, _ in amplifier_slopes(net, v0).values())  # some are saturated
    F, off = _stacked_kcl(net, x)
    n, h = v0.size, 1e-6
    J = jacobian(net, v0)[0]
    fd = np.stack([-(F(v0 + h * e) - F(v0 - h * e)) / (2 * h) for e in np.eye(n)], axis=1)
    assert np.abs(J - fd).max() < 1e-9 * np.abs(J).max()
    N, want = conductance_noise(net, v0), np.zeros((n, n))
    src = np.hstack([x, -x])[0]
    for c in range(net.n_connections):
        near = src if c == 0 else net.amplifier_output(c, eq.layers[c - 1], eq.layers[c])[0]
        for name, arr in (("weights", net.weights[c]), ("biases", net.biases[c])):
            for i, j in np.ndindex(arr.shape):
                g0 = arr[i, j]
                arr[i, j] = g0 * 1.001
                up = F(v0)
                arr[i, j] = g0 * 0.999
                down = F(v0)
                arr[i, j] = g0
                drop = v0[off[c] + j] - (near[i] if name == "weights" else (1 - 2 * i) * net.bias_voltage)
                b = (up - down) / (0.002 * g0) / drop
                want += g0 * np.outer(b, b)
    assert np.abs(N - want).max() < 1e-7 * np.abs(N).max()


@pytest.mark.parametrize("pairs", [False, True], ids=["single-ended", "differential"])
def test_the_noise_of_op_amp_networks_is_ngspices_noise_analysis(pairs):
    """Saturated op-amps with output resistance, Shockley diodes: the model's rms per node against ngspice's noise
    analysis of the same netlist (the macromodel's own resistors noiseless), to 1e-3."""
    from eqprop.circuits.noise import ThermalNoise
    from eqprop.netlists import NgspiceCircuit

    net = net_for("a0=100 swing=0.3 rout=1e3 offset_sigma=0.01", pairs=pairs)
    X = np.random.default_rng(0).uniform(-1, 1, (20, 8))
    eq = solve(net, X, tol=1e-13)
    saturated = sum((net.amplifier_slopes(c, eq.layers[c - 1], eq.layers[c])[0] == 0).sum(1) for c in (1, 2))
    b = int(np.argmax(saturated))
    assert saturated[b] > 0
    model = ThermalNoise(1e-12)
    tau, fast = model.time_constants(net, eq.voltages[b])
    want = model.node_std(net, [v[b:b + 1] for v in eq.layers])[0]
    got = NgspiceCircuit(net).noise_spectra(X[b:b + 1], 1e-12, 1e-3 / (2 * np.pi * tau), 1e4 / (2 * np.pi * fast),
                                            100)["total_rms"]
    assert np.abs(got / want - 1).max() < 1e-3


@pytest.mark.parametrize("pairs", [False, True], ids=["single-ended", "differential"])
def test_the_op_amps_own_input_noise_is_ngspices(pairs):
    """``noise=`` (V/sqrt(Hz) at the input): in ngspice a resistor of that thermal density in series with the +
    input; natively it enters where the offset does (``offset_gain``, 0 when saturated) and reaches the nodes through
    the loads and the CCCS. Here it is most of the nodes' noise, and the model is ngspice's noise analysis to 1e-3."""
    from eqprop.circuits.noise import ThermalNoise
    from eqprop.netlists import NgspiceCircuit

    spec = "a0=100 swing=0.3 rout=1e3 offset_sigma=0.01"
    net, quiet = net_for(spec + " noise=3e-7", pairs=pairs), net_for(spec, pairs=pairs)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 8))
    eq = solve(net, x, tol=1e-13)
    model = ThermalNoise(1e-12)
    tau, fast = model.time_constants(net, eq.voltages[0])
    want = model.node_std(net, eq.layers)[0]
    assert want.mean() > 5 * model.node_std(quiet, eq.layers)[0].mean()  # the op-amps' noise dominates
    got = NgspiceCircuit(net).noise_spectra(x, 1e-12, 1e-3 / (2 * np.pi * tau), 1e4 / (2 * np.pi * fast),
                                            100)["total_rms"]
    assert np.abs(got / want - 1).max() < 1e-3
    m = amplifier_model(spec)  # the offset gain is the output's slope in the offset
    v_in, load_g, load_i = np.array([[0.01, 0.2, -0.3]]), np.array([1e-3, 1e-3, 2e-3]), np.array([[1e-5, 0.0, -2e-4]])
    for gain in (4.0, -4.0):
        vos = np.array([0.002, -0.001, 0.0])
        fd = (m.output(gain, v_in, load_g, load_i, vos + 1e-7) - m.output(gain, v_in, load_g, load_i, vos - 1e-7)) / 2e-7
        np.testing.assert_allclose(m.offset_gain(gain, v_in, load_g, load_i, vos), fd, rtol=1e-6, atol=1e-9)


def test_the_exact_gradient_through_kirchhoff_is_the_energys_and_the_finite_differences():
    from eqprop.circuits.gradient import kcl_exact_gradient, resistive_exact_gradient

    rng = np.random.default_rng(0)
    for diode, pairs in (("ideal", False), ("shockley", False), ("shockley", True)):  # ideal amplifiers: two
        # derivations, one gradient
        net = layered([16, 12, 10, 4], gain=4, diode=diode, rails=(-0.3, 0.3), seed=2, g_range=(1e-5, 1e-4),
                      hidden_pairs=pairs)
        x, y = rng.uniform(-1, 1, (5, 8)), rng.uniform(-0.1, 0.1, (5, 2))
        eq = solve(net, x, tol=1e-13)
        a, b = resistive_exact_gradient(net, eq, y)[0], kcl_exact_gradient(net, eq, y)[0]
        assert max(np.abs(p - q).max() / np.abs(p).max() for p, q in zip(a, b)) < 1e-12
    for pairs in (False, True):
        _finite_differences(net_for("a0=10 rout=3e3 swing=0.3 offset_sigma=0.01 gain_sigma=0.05", pairs=pairs), rng)


def _finite_differences(net, rng):
    from eqprop.circuits.gradient import resistive_exact_gradient

    x, y = rng.uniform(-1, 1, (4, 8)), rng.uniform(-0.1, 0.1, (4, 2))
    grad, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-14), y)
    loss = lambda: 0.5 * ((solve(net, x, tol=1e-14).prediction - y) ** 2).sum(1).mean()  # noqa: E731
    for p, g in zip(net.weights + net.biases, grad):
        for idx in list(np.ndindex(p.shape))[::23]:
            p0 = p[idx]
            p[idx] = p0 * 1.0001
            up = loss()
            p[idx] = p0 * 0.9999
            down = loss()
            p[idx] = p0
            assert abs((up - down) / (2e-4 * p0) - g[idx]) < 1e-7 * np.abs(g).max()


def test_static_power_counts_the_op_amps_output_and_quiescent_power():
    """ngspice's source and amplifier power at the operating point is the dissipation in every resistor and diode
    (from the native equilibrium, with the op-amps' real outputs) plus each amplifier's quiescent iq x supply."""
    from eqprop.circuits import ShockleyDiode
    from eqprop.netlists import NgspiceCircuit

    net = layered([8, 6, 4], diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=3.0, seed=4,
                  amplifier="a0=200 rout=1e3 offset=0.01 iq=1e-6 supply=3")
    x = np.random.default_rng(4).uniform(0, 1, (1, 4))
    _, _, power = NgspiceCircuit(net).operating_points(x)
    eq = solve(net, x, tol=1e-13)
    src, layers = net.encode_inputs(x), eq.layers
    dissipated = 0.0
    for c in range(net.n_connections):
        u = src if c == 0 else net.amplifier_output(c, layers[c - 1], layers[c])
        v = layers[c]
        dissipated += float((net.weights[c] * (u[0][:, None] - v[0][None, :]) ** 2).sum())
        b = net.biases[c]
        dissipated += float((b[0] * (v[0] - net.bias_voltage) ** 2 + b[1] * (v[0] + net.bias_voltage) ** 2).sum())
        clamp = net.neurons[c]
        if clamp is not None:
            d = clamp.diode
            dissipated += float(((v[0] - clamp.v_high) * d.current(v[0] - clamp.v_high)
                                 + (clamp.v_low - v[0]) * d.current(clamp.v_low - v[0])).sum())
    quiescent = 6 * 3e-6  # six amplifiers (one per hidden node), 1 uA from 3 V each
    assert abs(power[0] - quiescent - dissipated) <= 1e-6 * dissipated
