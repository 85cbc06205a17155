"""Device mismatch: dies drawn from a seed, the same circuit in the native solver and in ngspice, and the
eqprop dies Monte Carlo over a trained run."""
import json

import numpy as np
import pytest

from eqprop.circuits import NetworkError, OpAmp, layered, solve
from eqprop.circuits.mismatch import Mismatch


def test_a_die_is_its_seed_and_its_spreads():
    net = layered([64, 200, 20], gain=4, seed=0)
    m = Mismatch(conductance=0.05, amplifier_offset=2e-3, amplifier_gain=0.03)
    a, b, c = m.die(net, 3), m.die(net, 3), m.die(net, 4)
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)  # the same die twice
    assert a.amplifier == b.amplifier and a.amplifier != c.amplifier
    ratio = a.weights[0] / net.weights[0]
    assert abs(ratio.std() - 0.05) < 0.005 and abs(ratio.mean() - 1) < 0.005
    assert isinstance(a.amplifier, OpAmp) and a.amplifier.offset_sigma == 2e-3 and a.amplifier.gain_sigma == 0.03
    only_g = Mismatch(conductance=0.05).die(net, 3)  # the conductances' stream does not depend on the amplifiers'
    np.testing.assert_array_equal(only_g.weights[1], a.weights[1])
    assert only_g.amplifier.ideal
    assert net.amplifier.ideal and np.array_equal(net.weights[0], layered([64, 200, 20], gain=4, seed=0).weights[0])
    for bad in (dict(conductance=-0.1), dict(conductance=2.0), dict(amplifier_gain=0.5), dict(amplifier_offset=np.nan)):
        with pytest.raises(NetworkError):
            Mismatch(**bad)
    with pytest.raises(NetworkError, match="seed"):
        m.die(net, -1)


def test_eqprop_dies_counts_every_die_and_agrees_with_ngspice(tmp_path):
    from eqprop.experiments.cli import main

    run = tmp_path / "run"
    assert main(["train", "--hidden", "16", "--epochs", "2", "--n-train", "300", "--out", str(run),
                 "--no-progress"]) == 0
    out = tmp_path / "dies"
    assert main(["dies", str(run), "--dies", "3", "--conductance", "0.1", "--amplifier-offset", "0.01",
                 "--spice", "1", "--out", str(out)]) == 0
    r = json.loads((out / "dies.json").read_text())
    assert [d["die"] for d in r["dies"]] == [0, 1, 2]
    first = r["dies"][0]
    assert first["spice_same_classes"] == 40 and first["spice_max_diff"] < 1e-5  # (the ideal diodes' stand-in)
    assert "spice_max_diff" not in r["dies"][1]
    none = tmp_path / "none"
    assert main(["dies", str(run), "--dies", "2", "--conductance", "0", "--out", str(none)]) == 0
    n = json.loads((none / "dies.json").read_text())
    assert all(d["test_accuracy"] == n["summary"]["nominal"] for d in n["dies"])  # no mismatch: the run itself
    dead = tmp_path / "dead"
    assert main(["dies", str(run), "--dies", "2", "--conductance", "0", "--dead-nodes", "0.5", "--out", str(dead)]) == 0
    k = json.loads((dead / "dies.json").read_text())
    assert k["mismatch"]["dead_nodes"] == 0.5 and k["summary"]["mean"] < n["summary"]["nominal"]
    assert main(["dies", str(run), "--conductance", "1.5", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    assert main(["dies", str(run), "--out", str(run)]) == 2  # never into a train run


def _shockley_net():
    from eqprop.circuits import ShockleyDiode

    return layered([16, 12, 6], diode=ShockleyDiode(i_s=1e-9), rails=(-0.05, 0.05), gain=4, seed=0)


def test_each_diode_of_each_node_is_drawn_and_the_die_is_one_circuit():
    from eqprop.circuits.devices import MismatchedShockleyDiode
    from eqprop.circuits.serialize import network_from_data, network_to_data

    net = _shockley_net()
    die = Mismatch(diode_is=0.5, diode_n=0.1).die(net, 7)
    d = die.neurons[0].diode
    assert isinstance(d, MismatchedShockleyDiode) and d.size == 12 and die.neurons[1] is None  # outputs: no diodes
    assert len(set(d.is_up + d.is_dn)) == 24 and len(set(d.n_up + d.n_dn)) == 24  # every diode its own draw
    again = Mismatch(diode_is=0.5, diode_n=0.1).die(net, 7)
    assert again.neurons[0].diode == d and Mismatch(diode_is=0.5, diode_n=0.1).die(net, 8).neurons[0].diode != d
    # the spreads: over a wide layer, log IS has the asked deviation and N its relative one
    wide = layered([16, 4000, 6], diode="shockley", rails=(-0.05, 0.05), seed=0)
    w = Mismatch(diode_is=0.5, diode_n=0.1).die(wide, 1).neurons[0].diode
    assert abs(np.log(np.array(w.is_up) / 1e-14).std() - 0.5) < 0.02
    assert abs((np.array(w.n_dn) - 1.0).std() - 0.1) < 0.005
    # the conductances' stream is the same with or without diode spreads
    both = Mismatch(conductance=0.05, diode_is=0.5).die(net, 7)
    np.testing.assert_array_equal(both.weights[0], Mismatch(conductance=0.05).die(net, 7).weights[0])
    # saved and loaded, the same die
    meta, arrays = network_to_data(die)
    back = network_from_data(json.loads(json.dumps(meta)), arrays)
    assert back.neurons[0].diode == d
    # a die's nominal-valued diodes are the nominal network
    x = np.random.default_rng(1).uniform(-1, 1, (5, 8))
    flat = Mismatch(diode_is=1e-300).die(net, 0)  # spreads this small draw the nominal values exactly
    np.testing.assert_allclose(solve(flat, x).voltages, solve(net, x).voltages, rtol=0, atol=1e-14)


@pytest.mark.spice
def test_a_die_with_diode_mismatch_is_ngspices_free_and_nudged():
    """Native vs ngspice on the same die's netlist (each neuron instance carries its diodes' IS and N), free and
    nudged both ways; the die moves the nodes by millivolts, ngspice agrees to a nanovolt. With unequal diodes
    the clamp's current at the rails' midpoint is not zero: a bracket assuming it would stop at T/S (it did)."""
    from eqprop.netlists import NgspiceCircuit

    net = _shockley_net()
    x = np.random.default_rng(1).uniform(-1, 1, (5, 8))
    y = np.full((5, 3), -0.05)
    y[:, 0] = 0.05
    for spreads in (dict(diode_is=0.5), dict(diode_n=0.1), dict(diode_is=2.0, diode_n=0.2)):
        die = Mismatch(**spreads).die(net, 7)
        assert np.abs(solve(die, x).voltages - solve(net, x).voltages).max() > 1e-3
        circuit = NgspiceCircuit(die)
        for beta in (0.0, 1e-6, -1e-6):
            native = solve(die, x, y if beta else None, beta, tol=1e-12)
            sp = circuit.equilibrium(x, y if beta else None, beta)
            assert np.abs(sp.voltages - native.voltages).max() < 1e-9, (spreads, beta)
    # the thermal noise model of the die (each diode's shot noise at its own current) is ngspice's noise analysis
    from eqprop.circuits.noise import ThermalNoise

    eq = solve(die, x[:1], tol=1e-12)
    model = ThermalNoise(1e-12, 0.0)
    tau, fast = model.time_constants(die, [v[0] for v in eq.layers])
    want = model.node_std(die, eq.layers)[0]
    ac = circuit.noise_spectra(x[:1], 1e-12, 1e-3 / (2 * np.pi * tau), 1e4 / (2 * np.pi * fast), 100)
    assert np.abs(ac["total_rms"] / want - 1).max() < 1e-3


def test_one_node_with_unequal_diodes_is_solved_to_its_root():
    from eqprop.circuits.devices import DiodeClamp, MismatchedShockleyDiode

    for up, dn in ((3e-9, 1e-9), (1e-9, 3e-9), (1e-6, 1e-12)):
        d = MismatchedShockleyDiode(i_s=1e-9, is_up=[up, 1e-9], is_dn=[dn, 1e-9], n_up=[1.0, 1.3], n_dn=[1.0, 0.8])
        clamp = DiodeClamp(d, -0.05, 0.05)
        S, T = np.array([1e-6, 1e-6]), np.array([[1e-8, -3e-7], [0.0, 5e-8]])
        v = clamp.solve(S, T, tol=1e-15)
        r = S * v - T + clamp.current(v)
        assert np.abs(r).max() < 1e-20, (up, dn, r)


def test_diode_spreads_need_shockley_diodes_and_say_so(tmp_path):
    from eqprop.circuits.devices import MismatchedShockleyDiode
    from eqprop.experiments.cli import main

    with pytest.raises(NetworkError, match="Shockley diodes; layer 1 has 'ideal'"):
        Mismatch(diode_is=0.1).die(layered([16, 12, 6], gain=4, seed=0), 0)
    for bad in (dict(diode_is=-0.1), dict(diode_n=0.5), dict(diode_is=np.inf)):
        with pytest.raises(NetworkError):
            Mismatch(**bad)
    with pytest.raises(NetworkError, match="one positive finite value per node"):
        MismatchedShockleyDiode(is_up=[1e-14, -1.0], is_dn=[1e-14] * 2, n_up=[1.0] * 2, n_dn=[1.0] * 2)
    die = Mismatch(diode_is=0.5).die(_shockley_net(), 0)
    die.neurons = [die.neurons[0], die.neurons[0]]  # drawn for 12 nodes, given to the 6 outputs
    with pytest.raises(NetworkError, match="drawn for 12 nodes, its layer has 6"):
        die.validate()
    run = tmp_path / "run"
    assert main(["train", "--hidden", "8", "--epochs", "1", "--n-train", "100", "--n-test", "50", "--out", str(run),
                 "--no-progress"]) == 0
    assert main(["dies", str(run), "--dies", "2", "--diode-is-spread", "0.2", "--out", str(tmp_path / "d")]) == 2
    assert not (tmp_path / "d").exists()


def test_dead_nodes_sit_at_zero_volts_as_grounded_nodes_do_and_ngspice_agrees():
    """A die's dead nodes are shorted to 0 V through their bias conductances: the native equilibrium is the one the
    same nodes grounded by ``LayeredNetwork.grounded`` give (to a millionth of the drive), and ngspice's on the
    die's netlist. Each die draws its own dead nodes, about the fraction asked."""
    from eqprop.netlists import NgspiceCircuit

    net = layered([16, 40, 30, 6], rails=(-0.05, 0.05), gain=4, seed=2)
    x = np.random.default_rng(1).uniform(-1, 1, (5, 8))
    m = Mismatch(dead_nodes=0.3)
    dead = m.dead(net, 4)
    assert [len(d) for d in dead] != [len(d) for d in m.dead(net, 5)] or any(
        not np.array_equal(a, b) for a, b in zip(dead, m.dead(net, 5)))
    assert 0.1 < sum(len(d) for d in dead) / 70 < 0.5
    die = m.die(net, 4)
    eq = solve(die, x, tol=1e-13, max_iter=20_000)
    masks = []
    for d, n in zip(dead, net.sizes[1:-1]):
        keep = np.ones((5, n))
        keep[:, d] = 0.0
        masks.append(keep)
    with net.grounded(masks):
        ref = solve(net, x, tol=1e-13, max_iter=20_000)
    assert np.abs(eq.voltages - ref.voltages).max() < 1e-7
    assert np.abs(eq.layers[0][:, dead[0]]).max() < 1e-7 and np.abs(eq.layers[0]).max() > 1e-3
    sp = NgspiceCircuit(die).equilibrium(x)
    assert np.abs(sp.voltages - solve(die, x, tol=1e-12).voltages).max() < 1e-6  # (the ideal diodes' stand-in)
    with pytest.raises(NetworkError, match="dead_nodes"):
        Mismatch(dead_nodes=1.5)
