"""Crossbar wire resistance: the wired circuit against a hand-solved ladder, ngspice, and the ideal-wire limit;
its layout, its refusals and eqprop parasitics over a trained run."""
import json

import numpy as np
import pytest

from eqprop.circuits import NetworkError, OpAmp, layered, solve
from eqprop.circuits.parasitics import neuron_voltages, wired, wired_nodes
from eqprop.circuits.solve_graph import _reduced


def test_one_column_is_the_series_ladder_solved_by_hand():
    # one feature as +x/-x sources, one output node, no biases: the only current runs source+ -> row wire ->
    # G_a -> column wire -> G_b -> row wire -> source-, through three wire segments (r each) in series
    net = layered([2, 1], diode=None, readout="nodes", seed=0)
    ga, gb, r, x = 3e-6, 1e-6, 2e4, 0.7
    net.weights[0][:] = [[ga], [gb]]
    net.biases[0][:] = 0.0
    graph = wired(net, r)
    eq = solve(graph, np.array([[x]]))
    current = 2 * x / (r + 1 / ga + r + 1 / gb + r)
    expected = -x + current * (1 / gb + r)  # the output hangs off the column below the last crossing: no current
    got = neuron_voltages(graph, eq, net)
    assert abs(got[0, 0] - expected) < 1e-12
    assert abs(solve(net, np.array([[x]])).voltages[0, 0] - (-x + 2 * x / (1 / ga + 1 / gb) / gb)) < 1e-12


@pytest.mark.parametrize("kw", [dict(diode=None, gain=3), dict(diode="shockley", gain=2, hidden_pairs=True),
                                dict(diode="shockley", gain=[2, 4]), dict(diode="ideal", gain=2)])
def test_ideal_wires_are_the_limit_and_the_error_scales_with_r(kw):
    sizes = [6, 5, 4, 4] if isinstance(kw.get("gain"), list) else [6, 5, 4]
    net = layered(sizes, seed=1, **kw)
    x = np.random.default_rng(2).uniform(-1, 1, (3, 3))
    ideal = solve(net, x).voltages
    errs = []
    for r in (1.0, 10.0, 100.0):
        graph = wired(net, r)
        errs.append(np.abs(neuron_voltages(graph, solve(graph, x), net) - ideal).max())
    assert errs[0] < 1e-5 and errs[0] < errs[1] < errs[2]
    assert 8 < errs[1] / errs[0] < 12 and 8 < errs[2] / errs[1] < 12  # first order in r
    # milliohm wires beside microsiemens conductances: the solve stops at its rounding floor instead of failing
    graph = wired(net, 1e-3)
    assert np.abs(neuron_voltages(graph, solve(graph, x), net) - ideal).max() < 1e-6


@pytest.mark.parametrize("kw", [dict(diode=None, gain=3), dict(diode="shockley", gain=2, hidden_pairs=True)])
def test_ngspice_solves_the_wired_netlist_to_the_same_volts(kw):
    from eqprop.netlists import NgspiceCircuit

    net = layered([6, 5, 4], seed=3, **kw)
    graph = wired(net, 3e4)  # a wire load of order one: the volts move far from the ideal wires'
    x = np.random.default_rng(4).uniform(-1, 1, (2, 3))
    native, spice = solve(graph, x), NgspiceCircuit(graph).equilibrium(x)
    assert np.abs(spice.voltages - native.voltages).max() < 1e-9
    assert np.abs(neuron_voltages(graph, native, net) - solve(net, x).voltages).max() > 1e-3


def test_the_layout_keeps_every_conductance_once_on_its_own_crossing():
    net = layered([6, 5, 4], diode=None, gain=2, hidden_pairs=True, seed=5)
    net.weights[0][1, 2] = 0.0  # a missing crossing: the wires pass on
    graph = wired(net, 7.0).graph
    crossings, wires = [], []
    for a, b, d in graph.edges(data=True):
        w, u = sorted((a, b), reverse=True)
        if w[0] == "w" and u[0] == "u" and w[1:] == u[1:]:  # a row wire meets a column wire of the same place
            crossings.append(d["g"])
        else:
            wires.append(d.get("g", d.get("g_inv")))
    everything = np.concatenate([np.ravel(np.vstack([w, b])) for w, b in zip(net.weights, net.biases)])
    assert sorted(crossings) == sorted(everything[everything > 0])
    assert all(g == 1 / 7.0 for g in wires)  # every other edge is a wire segment
    assert "u0_1_2" in graph and not graph.has_edge("w0_1_2", "u0_1_2")
    # connection 1 is differential: 2 x 5 driver rows (the second five from the inverting outputs) and 2 bias rows
    amp = [(a, b, d) for a, b, d in graph.edges(data=True) if "gain" in d and a.startswith(("h", "w1"))]
    assert len(amp) == 10 and sum("g_inv" in d for *_, d in amp) == 5
    assert all(d["gain"] == 2.0 for *_, d in amp)
    assert len([n for n in graph if n.startswith("w1_")]) == (2 * 5 + 2) * 4
    assert len(graph) - len(net.to_graph().graph) == wired_nodes(net)


def test_wired_refuses_what_it_cannot_lay_out():
    net = layered([6, 5, 4], seed=0)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(NetworkError, match="wire resistance"):
            wired(net, bad)
    real = layered([6, 5, 4], gain=2, amplifier=OpAmp(a0=1e3), seed=0)
    with pytest.raises(NetworkError, match="ideal amplifiers"):
        wired(real, 1.0)


def test_eqprop_parasitics_over_a_trained_run(tmp_path, capsys):
    from eqprop.experiments.cli import main

    run = tmp_path / "run"
    assert main(["train", "--hidden", "12", "--epochs", "1", "--n-train", "200", "--out", str(run),
                 "--no-progress"]) == 0
    out = tmp_path / "par"
    assert main(["parasitics", str(run), "--wire", "0.5", "1e5", "--images", "12", "--spice", "1",
                 "--out", str(out)]) == 0
    r = json.loads((out / "parasitics.json").read_text())
    small, large = r["wires"]
    assert r["images"] == 12 and [w["wire_ohms"] for w in r["wires"]] == [0.5, 1e5]
    assert small["max_shift"] < 1e-4 < large["max_shift"]  # the shift grows with the wire
    assert small["spice_same_classes"] == 1 and small["spice_max_diff"] < 1e-5  # (the ideal diodes' stand-in)
    assert large["wire_load"] == pytest.approx(2e5 * small["wire_load"])
    assert "| 100000 |" in (out / "parasitics.md").read_text()
    capsys.readouterr()
    assert main(["parasitics", str(run), "--wire", "1", "--images", "2", "--spice", "3",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--spice 3" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["parasitics", str(run), "--wire", "1e-4", "--out", str(tmp_path / "faint")]) == 2
    assert "give wires of at least" in capsys.readouterr().err and not (tmp_path / "faint").exists()
    assert main(["parasitics", str(run), "--wire", "1", "--out", str(run)]) == 2  # never into a train run
    wide = tmp_path / "wide"  # 128-4000-20 as crossbars: 1.2 million nodes an image, refused before any solve
    assert main(["train", "--hidden", "4000", "--epochs", "1", "--n-train", "20", "--n-test", "10", "--out", str(wide),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["parasitics", str(wide), "--wire", "1", "--out", str(tmp_path / "w")]) == 2
    assert "1,200,080 nodes an image" in capsys.readouterr().err and not (tmp_path / "w").exists()
    assert main(["netlist", str(wide), "--wire", "1", "--out", str(tmp_path / "w.cir")]) == 2
    assert "1,200,080 nodes" in capsys.readouterr().err and not (tmp_path / "w.cir").exists()
    amp = tmp_path / "amp"  # op-amps: refused in one line before anything is solved or printed
    assert main(["train", "--hidden", "6", "--epochs", "1", "--n-train", "50", "--n-test", "10", "--amplifier",
                 "a0=1e3", "--out", str(amp), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["parasitics", str(amp), "--wire", "100", "--out", str(tmp_path / "a")]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "take ideal amplifiers" in out.err and not (tmp_path / "a").exists()
    deck = tmp_path / "wired.cir"  # the same circuit as a deck a user takes to their own simulator
    assert main(["netlist", str(run), "--wire", "1e5", "--count", "2", "--out", str(deck)]) == 0
    text = deck.read_text()
    assert "100000 ohms per wire segment" in text and "the same for 2/2 samples" in text
    plain = tmp_path / "plain.cir"
    assert main(["netlist", str(run), "--out", str(plain)]) == 0
    assert text.count("\nR") > 2 * plain.read_text().count("\nR")
    with pytest.raises(SystemExit, match="2"):
        main(["netlist", str(run), "--wire", "0", "--out", str(tmp_path / "no.cir")])
    assert "--wire: must be > 0" in capsys.readouterr().err and not (tmp_path / "no.cir").exists()
    assert (run / "model.npz").exists() or any(run.iterdir())


@pytest.mark.parametrize("diode", [None, "ideal"])
def test_only_the_wire_load_matters(diode):
    # every conductance k times larger and every wire k times shorter: the same circuit up to a current scale,
    # so the same free equilibrium; the table's wire load (r x conductance) is what carries to another technology
    net = layered([6, 5, 4], diode=diode, gain=2, seed=6)
    big = layered([6, 5, 4], diode=diode, gain=2, seed=6)
    for w, b in zip(big.weights + big.biases, net.weights + net.biases):
        w[:] = 40 * b
    x = np.random.default_rng(7).uniform(-1, 1, (2, 3))
    g1, g2 = wired(net, 4e4), wired(big, 1e3)
    v1, v2 = neuron_voltages(g1, solve(g1, x), net), neuron_voltages(g2, solve(g2, x), big)
    assert np.abs(v1 - v2).max() < 1e-9 and np.abs(v1 - solve(net, x).voltages).max() > 1e-3


@pytest.mark.parametrize("kw", [dict(diode="ideal", gain=3), dict(diode="ideal", gain=2, hidden_pairs=True),
                                dict(diode="shockley", gain=2)])
def test_eliminating_the_linear_nodes_first_gives_the_same_equilibrium(kw, monkeypatch):
    # the graph solver's clamped-node reduction (one LU of the wires for the whole batch) against the full system
    import eqprop.circuits.solve_graph as sg

    net = layered([8, 6, 4], seed=8, **kw)
    graph = wired(net, 5e3)
    rng = np.random.default_rng(9)
    x, y = rng.uniform(-1, 1, (5, 4)), rng.uniform(-0.1, 0.1, (5, 2))
    monkeypatch.setattr(sg, "REDUCE_MIN_NODES", 10 ** 9)
    full = [solve(graph, x), solve(graph, x, y, 0.3)]
    calls = []
    monkeypatch.setattr(sg, "REDUCE_MIN_NODES", 0)
    monkeypatch.setattr(sg, "_reduced", lambda *a: calls.append(1) or _reduced(*a))
    for f, r in zip(full, [solve(graph, x), solve(graph, x, y, 0.3)]):
        assert np.abs(f.voltages - r.voltages).max() < 1e-10
    assert len(calls) == 2


@pytest.mark.parametrize("kw", [dict(gain=3.0), dict(gain=2.0, hidden_pairs=True, sizes=[8, 6, 5, 4]),
                                dict(gain=1.0, diode=None)])
def test_programmed_crossbars_are_the_wired_graph(kw):
    """Crossbars.program(net): the compiled graph of wired(net, r) to rounding, in its own node order, with zero
    conductances at some crossings (no edge there in wired()); its solves are wired()'s, free and nudged."""
    from eqprop.circuits.parasitics import Crossbars
    from eqprop.circuits.solve_graph import compile_graph

    kw = dict(kw)
    net = layered(kw.pop("sizes", [8, 6, 4]), seed=21, rails=(-0.05, 0.05), **kw)
    rng = np.random.default_rng(22)
    for w in net.weights:
        w[rng.uniform(size=w.shape) < 0.2] = 0.0
    net.biases[0][0, 1] = 0.0
    bars = Crossbars(net, 3e3)
    got = bars.program(net)
    graph = wired(net, 3e3)
    want = compile_graph(graph)
    index = {n: i for i, n in enumerate(want.free)}
    perm = np.array([index[n] for n in got.free])
    assert sorted(got.free) == sorted(want.free)
    Kw = want.K.toarray()[np.ix_(perm, perm)]
    np.testing.assert_allclose(got.K.toarray(), Kw, rtol=1e-14, atol=1e-14 * np.abs(Kw).max())
    np.testing.assert_array_equal(got.D.toarray(), want.D.toarray()[perm])
    np.testing.assert_array_equal(got.R.toarray(), want.R.toarray()[:, perm])
    np.testing.assert_allclose(got.kappa, want.kappa[perm], rtol=1e-14)
    x = rng.uniform(-1, 1, (3, net.n_features))
    y = rng.uniform(-0.05, 0.05, (3, net.sizes[-1] // 2))
    for args in ((), (y, 1e-6), (y, -1e-6)):
        a = bars.solve(got, x, *args)
        b = solve(graph, x, *args)
        np.testing.assert_allclose(a.voltages, b.voltages[:, perm], atol=1e-10)
        np.testing.assert_allclose(a.voltages[:, bars.neurons], neuron_voltages(graph, b, net), atol=1e-10)


def test_programmed_crossbars_refuse_floating_nodes_and_another_circuit():
    """An island of nodes whose crossings are all zero is named (wired() refuses it the same way); a network whose
    circuit differs from the layout's is refused, not solved on the old layout."""
    from eqprop.circuits.parasitics import Crossbars

    net = layered([8, 6, 4], seed=23, gain=2.0)
    bars = Crossbars(net, 1e3)
    net.weights[0][:, 2] = 0.0  # hidden node 2: nothing from the inputs or the biases, only to the outputs
    net.biases[0][:, 2] = 0.0
    net.weights[1][:, :] = 0.0
    net.weights[1][2, 0] = 1e-6  # ... to output 0 alone, which hears nothing else
    net.biases[1][:, 0] = 0.0
    with pytest.raises(NetworkError, match="no resistive path to a source"):
        wired(net, 1e3)
    with pytest.raises(NetworkError, match="no resistive path to a source"):
        bars.program(net)
    other = layered([8, 6, 4], seed=23, gain=3.0)
    assert not bars.fits(other)
    with pytest.raises(NetworkError, match="lay it out again"):
        bars.program(other)


def test_programmed_crossbars_refuse_bad_conductances():
    from eqprop.circuits.parasitics import Crossbars

    net = layered([8, 6, 4], seed=24)
    bars = Crossbars(net, 1e3)
    net.weights[1][0, 0] = np.nan
    with pytest.raises(NetworkError, match="NaN"):
        bars.program(net)
    net.weights[1][0, 0] = -1e-6
    with pytest.raises(NetworkError, match="negative"):
        bars.program(net)


def test_wire_capacitance_is_checked_where_it_is_given():
    from eqprop.circuits.network import GraphNetwork

    net = layered([8, 6, 4], seed=25)
    for bad in (-1e-15, 0.0, np.nan, True, "1f"):
        with pytest.raises(NetworkError, match="wire capacitance"):
            wired(net, 1e3, c_wire=bad)
    g = wired(net, 1e3, c_wire=2e-15).graph
    assert g.nodes["w0_0_0"]["capacitance"] == 2e-15 and "capacitance" not in g.nodes["h1_0"]
    g.nodes["w0_0_0"]["capacitance"] = -1.0
    with pytest.raises(NetworkError, match="w0_0_0.*capacitance"):
        GraphNetwork(g, n_features=4)
