"""ngspice against the native solver: netlists run by hand and through the shared library agree.

These tests need ngspice (``make setup`` installs it); without it they fail, on purpose.
"""
import os
import signal
import threading
import time

import networkx as nx
import numpy as np
import pytest

import eqprop.netlists.ngspice as ngmod
from eqprop.circuits import InputError, NetworkError, ShockleyDiode, energy, layered, solve
from eqprop.circuits.energy import node_conductance
from eqprop.learning import NativeBackend, cosine, eqprop_gradient, resistive_exact_gradient, run_phases
from eqprop.backends.spice import SpiceBackend
from eqprop.netlists import (NgspiceCircuit, SpiceError, SpicePool, SpiceUnavailable, Transient, run_file,
                             to_netlist)
from eqprop.netlists.batch import free_voltages
from eqprop.netlists.golden import EXAMPLES, EXAMPLES_DIR, example_netlist
from eqprop.netlists.transient import settling

MICROVOLT = 1e-6


def free_names(net):
    return net.free_node_names() if hasattr(net, "free_node_names") else [str(n) for n in net.free_nodes]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden_netlists_regenerate_byte_for_byte(name):
    assert example_netlist(name) == (EXAMPLES_DIR / f"{name}.cir").read_text()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_ngspice_program_on_golden_files_matches_native(name):
    net, x, y, beta = EXAMPLES[name]()
    ref = solve(net, x, y, beta, tol=1e-13)
    volts = free_voltages(run_file(EXAMPLES_DIR / f"{name}.cir"), free_names(net))
    assert volts.shape == ref.voltages.shape
    assert np.abs(volts - ref.voltages).max() < MICROVOLT


def random_case(seed, i_s=1e-14, rails=(-0.1, 0.1), scale=6.0):
    rng = np.random.default_rng(seed)
    sizes = [2 * int(rng.integers(2, 6)), int(rng.integers(2, 7)), int(rng.integers(2, 5)), 4]
    net = layered(sizes, diode=ShockleyDiode(i_s=i_s), rails=rails, gain=[float(rng.uniform(1.5, 4)),
                  float(rng.uniform(1.5, 4))], g_range=(1e-6, 5e-6), seed=seed)
    x = rng.uniform(-scale, scale, (6, sizes[0] // 2))
    y = rng.uniform(-0.2, 0.2, (6, 2))
    return net, x, y


@pytest.mark.parametrize("seed,i_s,scale", [(0, 1e-14, 6.0), (5, 1e-14, 6.0), (6, 1e-14, 6.0), (0, 1e-7, 1.5), (3, 1e-8, 1.5)])
def test_shared_library_matches_native_within_a_microvolt(seed, i_s, scale):
    net, x, y = random_case(seed, i_s=i_s, scale=scale)
    circuit = NgspiceCircuit(net)
    conducting = 0.0
    clamp, S = net.neurons[0], node_conductance(net)[0]
    for beta in (0.0, 2e-6, -2e-6):
        eq = circuit.equilibrium(x, y, beta)
        ref = solve(net, x, y, beta, tol=1e-13)
        assert np.abs(eq.voltages - ref.voltages).max() < MICROVOLT, beta
        assert eq.residual < 1e-12  # KCL recomputed natively on ngspice's voltages
        diode_current = np.abs(clamp.current(eq.layers[0]))
        conducting = max(conducting, float((diode_current / (S * 0.1)).max()))
    assert conducting > 0.01  # diodes carry currents comparable to the resistors': the nonlinearity is exercised


def test_single_sample_netlist_and_conductance_nudge_form_agree(tmp_path):
    net, x, y = random_case(5)
    ref = solve(net, x[:1], y[:1], 3e-6, tol=1e-13)
    for form in ("current", "conductance"):
        path = to_netlist(net, x[:1], y[:1], 3e-6, nudge=form).write(tmp_path / f"{form}.cir")
        volts = free_voltages(run_file(path), free_names(net))
        assert np.abs(volts - ref.voltages).max() < MICROVOLT, form


def test_eqprop_gradient_from_ngspice_matches_native():
    net, x, y = random_case(1, i_s=1e-7, rails=(-0.05, 0.05), scale=1.0)
    y = y * 0.2
    beta = 0.05 * float(node_conductance(net)[-1].mean())
    native, spice = NativeBackend(net, tol=1e-13), SpiceBackend(net, workers=1)
    g_native = eqprop_gradient(native, run_phases(native, x, y, beta, "centered"))
    g_spice = eqprop_gradient(spice, run_phases(spice, x, y, beta, "centered"))
    exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    flat = lambda gs: np.concatenate([g.ravel() for g in gs])  # noqa: E731
    assert cosine(flat(g_spice), flat(g_native)) >= 0.999
    assert cosine(flat(g_spice), flat(exact)) >= 0.99


def test_process_pool_equals_in_process_results():
    net, _, _ = random_case(2)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, net.n_features))
    y = rng.uniform(-0.1, 0.1, (40, net.n_targets))
    local = NgspiceCircuit(net).equilibrium(x, y, 1e-6)
    with SpicePool(net, workers=2, chunk=8) as pool:
        parallel = pool.equilibrium(x, y, 1e-6)
        assert np.abs(parallel.voltages - local.voltages).max() < 1e-9
        net.weights[0] *= 1.5  # a training step: workers must reload
        pool.load(net)
        after = pool.equilibrium(x, y, 1e-6)
    assert np.abs(after.voltages - solve(net, x, y, 1e-6, tol=1e-13).voltages).max() < MICROVOLT


def test_workers_are_recycled_when_ngspice_memory_grows_and_results_stay_the_same():
    net, x, y = random_case(4)
    ref = solve(net, x, y, 1e-6, tol=1e-13).voltages
    with SpicePool(net, workers=1, memory_limit_mb=1.0) as pool:  # every batch exceeds 1 MB: recycle each time
        for _ in range(2):
            assert np.abs(pool.equilibrium(x, y, 1e-6).voltages - ref).max() < MICROVOLT
        assert pool.recycled == 2


def test_orphaned_worker_exits_when_its_parent_dies():
    import subprocess
    import sys
    import time
    code = ("import numpy as np, os, sys\n"
            "from eqprop.circuits import layered, ShockleyDiode\n"
            "from eqprop.netlists import SpicePool\n"
            "net = layered([4, 3, 2], diode=ShockleyDiode())\n"
            "p = SpicePool(net, workers=1)\n"
            "p.equilibrium(np.zeros((2, 2)))\n"
            "print(*[c.pid for c in __import__('multiprocessing').active_children()], flush=True)\n"
            "os._exit(0)\n")  # dies without shutting the pool down, as a killed run would
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    pids = [int(p) for p in out.stdout.split()]
    assert pids, out.stderr
    deadline = time.time() + 10
    alive = pids
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if _alive(p)]
    assert not alive, f"worker processes {alive} outlived their parent"


def _alive(pid: int) -> bool:
    import os
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_sample_a_failing_sweep_cannot_settle_is_rescued_alone(monkeypatch):
    net, x, y = random_case(3)
    circuit = NgspiceCircuit(net)
    real_run = NgspiceCircuit._analyse
    calls = []

    def flaky(self, text, card):
        calls.append(card)
        ok = real_run(self, text, card)
        return ok and not card.startswith("dc")  # every sweep "fails" in its last sample

    monkeypatch.setattr(NgspiceCircuit, "_analyse", flaky)
    eq = circuit.equilibrium(x, y, 1e-6)
    assert "op" in calls  # the last sample was rescued with a plain operating point
    assert eq.info["rescued"][-1] >= 1 and eq.info["rescued"][:-1].sum() == 0
    assert np.abs(eq.voltages - solve(net, x, y, 1e-6, tol=1e-13).voltages).max() < MICROVOLT


def test_sample_that_never_converges_is_named(monkeypatch):
    net, x, _ = random_case(3)
    circuit = NgspiceCircuit(net)
    monkeypatch.setattr(NgspiceCircuit, "_analyse", lambda self, text, card: False)
    monkeypatch.setattr(NgspiceCircuit, "_sweep", lambda self, x, y, beta, repeats: (
        np.empty((0, repeats, len(self.free_nodes))), np.empty(0)))
    with pytest.raises(SpiceError, match="sample 0") as info:
        circuit.equilibrium(x)
    assert info.value.sample == 0 and info.value.analysis == "op"


def test_missing_libngspice_says_how_to_install(monkeypatch):
    from PySpice.Spice.NgSpice import Shared

    def broken(*args, **kwargs):
        raise OSError("cannot load library 'libngspice.so'")

    monkeypatch.setattr(ngmod, "_LIBRARY", None)
    monkeypatch.setattr(Shared.NgSpiceShared, "new_instance", classmethod(lambda cls, *a, **k: broken()))
    with pytest.raises(SpiceUnavailable, match="apt-get install -y ngspice libngspice0-dev"):
        ngmod.ngspice_library()


def test_writer_refuses_what_spice_cannot_simulate():
    net = layered([4, 3, 2], diode="ideal")
    stand_in = to_netlist(net).text  # ideal diodes: the exact 1 S piecewise-linear behavioural source
    assert "PiecewiseLinearDiode(g_on=1.0" in stand_in and "B_up node hi I = max(v(node,hi), 0)" in stand_in
    approx = to_netlist(net, ideal_diode=ShockleyDiode(i_s=1e-12, n=0.02)).text  # or an explicit stand-in
    assert "written as ShockleyDiode(i_s=1e-12" in approx and ".model dclamp D(IS=1e-12 N=0.02)" in approx
    shock = layered([4, 3, 2], diode="shockley")
    with pytest.raises(InputError, match="nudge='current'"):
        to_netlist(shock, np.ones((1, 2)), np.zeros((1, 1)), -1e-6, nudge="conductance")
    with pytest.raises(InputError, match="shape"):
        to_netlist(shock, np.ones((1, 3)))
    g = nx.Graph()
    g.add_node("in put", role="input", feature=0, sign=1.0)
    g.add_node("o", role="output", readout=(0, 1.0))
    g.add_edge("in put", "o", g=1e-6)
    from eqprop.circuits import GraphNetwork
    with pytest.raises(NetworkError, match="SPICE node"):
        to_netlist(GraphNetwork(g, n_features=1, readout="nodes"))
    with pytest.raises(NetworkError, match="t_step"):
        Transient(1e-12, 1e-6, 1e-5)


def test_static_power_equals_dissipation_and_transient_settles_to_the_operating_point():
    net = layered([8, 6, 4], diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=3.0, seed=4)
    x = np.random.default_rng(4).uniform(0, 1, (1, 4))
    circuit = NgspiceCircuit(net)
    s = settling(circuit, x, capacitance=1e-12)
    # independent check: power dissipated in every resistor and diode, from the native equilibrium
    eq = solve(net, x, tol=1e-13)
    src, layers = net.encode_inputs(x), eq.layers
    dissipated = 0.0
    for c in range(net.n_connections):
        u = net.gains[c] * (src if c == 0 else layers[c - 1])
        v = layers[c]
        dissipated += float((net.weights[c] * (u[0][:, None] - v[0][None, :]) ** 2).sum())
        b = net.biases[c]
        dissipated += float((b[0] * (v[0] - net.bias_voltage) ** 2 + b[1] * (v[0] + net.bias_voltage) ** 2).sum())
        if net.neurons[c] is not None:
            clamp = net.neurons[c]
            d = clamp.diode
            dissipated += float(((v[0] - clamp.v_high) * d.current(v[0] - clamp.v_high)
                                 + (clamp.v_low - v[0]) * d.current(clamp.v_low - v[0])).sum())
    assert abs(s.static_power - dissipated) <= 1e-6 * dissipated
    assert np.abs(s.final_outputs - s.op_outputs).max() <= 0.01 * np.abs(s.op_outputs).max()
    assert 0 < s.settling_time < s.t_stop
    # the energy to settle is at least what the static power would draw over that time, minus nothing stored
    assert s.energy > 0
    assert np.isfinite(energy(net, src, layers)).all()


def _kill_workers_while(pool, batch_running, once: bool):
    """SIGKILLs the pool's workers (one, or every one it sees) while batch_running is set."""
    def loop():
        while batch_running.is_set():
            pids = pool.worker_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                if once:
                    return
            time.sleep(0.05)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_a_pool_deadline_halts_a_workers_analysis_and_the_pool_goes_on():
    """SpicePool(deadline=s): each worker's ngspice halts an analysis past s seconds and the batch fails with a
    SpiceError naming the deadline (no wait for a runaway sweep); the same workers then settle the next batch.
    A deadline that is not positive finite seconds is refused in one line."""
    net = layered([48, 24, 10], seed=2)
    x = np.random.default_rng(4).uniform(0, 1, (96, 24))
    pool = SpicePool(net, workers=1, deadline=1e-5)
    try:
        with pytest.raises(SpiceError, match="deadline of 1e-05 s"):
            pool.equilibrium(x)
        pool.deadline = None
        eq = pool.equilibrium(x)
        assert np.abs(eq.voltages - solve(net, x, tol=1e-13).voltages).max() < MICROVOLT
        assert pool.restarts == 0
    finally:
        pool.close()
    for bad in (0, -1.0, float("nan"), float("inf"), "5", True):
        with pytest.raises(SpiceError, match="deadline must be positive seconds"):
            SpicePool(net, workers=1, deadline=bad)


def test_a_worker_killed_mid_batch_or_while_idle_loses_no_sample():
    net, _, _ = random_case(2)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (160, net.n_features))
    y = rng.uniform(-0.1, 0.1, (160, net.n_targets))
    with SpicePool(net, workers=2, chunk=4) as pool:
        ref = pool.equilibrium(x, y, 1e-6).voltages
        running = threading.Event()
        running.set()
        killer = _kill_workers_while(pool, running, once=True)
        got = pool.equilibrium(x, y, 1e-6).voltages  # a worker is killed while chunks are in flight
        running.clear()
        killer.join()
        assert pool.restarts == 1  # the kill landed inside the batch
        np.testing.assert_array_equal(got, ref)
        os.kill(pool.worker_pids()[0], signal.SIGKILL)  # now one dies between batches
        np.testing.assert_array_equal(pool.equilibrium(x, y, 1e-6).voltages, ref)
        assert pool.restarts == 2


def test_workers_that_keep_dying_are_reported_with_the_samples_lost():
    net, x, y = random_case(2)
    x = np.repeat(x, 40, axis=0)
    with SpicePool(net, workers=2, chunk=2) as pool:
        running = threading.Event()
        running.set()
        killer = _kill_workers_while(pool, running, once=False)
        with pytest.raises(SpiceError, match=r"died twice .* samples \d+\.\. \(chunks starting at"):
            pool.equilibrium(x, None)
        running.clear()
        killer.join()


def test_a_pool_that_never_notices_a_dead_worker_is_not_waited_on_for_ever(monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    import eqprop.netlists.pool as pool_mod
    net, _, _ = random_case(2)
    pool = SpicePool(net, workers=1)
    monkeypatch.setattr(pool_mod, "DEATH_GRACE_S", 0.3)
    monkeypatch.setattr(pool, "_healthy", lambda: False)  # a worker is dead, and its future never completes
    t0 = time.monotonic()
    with pytest.raises(BrokenProcessPool):
        pool._collect({0: Future()}, {}, pool_mod._bar(1, False))
    assert time.monotonic() - t0 < 5


def test_ctrl_c_and_a_deadline_stop_a_long_ngspice_analysis_at_once(terminal_ctrl_c):
    """ngspice runs in its background thread while Python waits: Ctrl-C (SIGINT, here from a timer) raises
    KeyboardInterrupt within a poll interval and halts ngspice, where a foreground run held the thread inside C
    and PySpice's callbacks swallowed the interrupt until the analysis ended (minutes). A deadline halts it the
    same way, with a SpiceError; the circuit is usable afterwards."""
    import os
    import signal
    import threading
    import time

    from eqprop.netlists.writer import Transient

    net = layered([12, 8, 4], diode=None, seed=1)
    circuit = NgspiceCircuit(net)
    x = np.random.default_rng(0).uniform(0, 1, (1, 6))
    long = Transient(1e-12, 0.05, 4e-9, noise_temperature=300.15)  # about a minute and a half of ngspice
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        circuit.transient(x, long)
    assert time.monotonic() - t0 < 3.0  # 1 s to the signal, then within 2 s
    circuit.deadline = 0.5
    t0 = time.monotonic()
    with pytest.raises(SpiceError, match="deadline of 0.5 s"):
        circuit.transient(x, long)
    assert time.monotonic() - t0 < 2.5
    circuit.deadline = None
    eq = circuit.equilibrium(x)
    assert np.abs(eq.voltages - solve(net, x, tol=1e-13).voltages).max() < MICROVOLT


@pytest.mark.parametrize("g_on,v_on,g_off", [(1.0, 0.0, 0.0), (2e-3, 0.01, 0.0), (1.0, 0.0, 1e-5), (5e-3, -0.005, 2e-6)])
def test_piecewise_linear_diodes_are_written_term_by_term_and_settle_as_native(g_on, v_on, g_off):
    """The behavioural source of a piecewise-linear diode leaves out zero terms and unit factors (ngspice evaluates
    its tree at every iteration) and keeps every other one: ngspice's equilibria equal the native solver's."""
    from eqprop.circuits.devices import PiecewiseLinearDiode

    diode = PiecewiseLinearDiode(g_on=g_on, v_on=v_on, g_off=g_off)
    net = layered([12, 8, 6, 4], diode=diode, rails=(-0.01, 0.01), gain=[3.0, 2.0], seed=2)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 3, (4, 6)), rng.uniform(-0.05, 0.05, (4, 2))
    line = next(s for s in to_netlist(net, x[:1]).text.splitlines() if s.startswith("B_up"))
    assert ("max(v(node,hi), 0)" in line) == (v_on == 0 and g_on == 1)
    assert ("*v(node,hi) + " in line) == (g_off != 0) and (" - " in line) == (v_on != 0)
    circuit = NgspiceCircuit(net)
    conducting = 0
    for beta in (0.0, 1e-6, -1e-6):
        ref = solve(net, x, y, beta, tol=1e-13)
        assert np.abs(circuit.equilibrium(x, y, beta).voltages - ref.voltages).max() < 1e-9, beta
        v = ref.layers[0]
        conducting += int(np.sum((v - 0.01 > v_on) | (-0.01 - v > v_on)))
    assert conducting > 0  # some diodes are past their knee: the nonlinear piece is exercised
    if v_on < 0:  # knees more than half the rails' span inside them: both diodes would conduct, refused
        with pytest.raises(NetworkError, match="both diodes would conduct"):
            layered([12, 8, 4], diode=PiecewiseLinearDiode(g_on=g_on, v_on=-0.0101, g_off=g_off), rails=(-0.01, 0.01))


@pytest.mark.parametrize("diode", ["ideal", ShockleyDiode(i_s=1e-7)])
def test_differential_hidden_layers_have_a_graph_form_that_ngspice_settles_as_native(diode):
    """A differential amplifier's two outputs (+aV into G+, -aV into G-) as one edge's g and g_inv: the graph
    solver gives the layered solver's equilibrium, free and nudged, and ngspice's (one amplifier per driver and
    sign, the inverting one's CCCS returning -1/a of its current) the same to its precision; a netlist of it
    holds both amplifiers and both halves of every conductance pair."""
    from eqprop.circuits.network import conductances

    net = layered([16, 6, 5, 4], diode=diode, rails=(-0.05, 0.05), gain=[4.0, 3.0], seed=1, hidden_pairs=True)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (3, 8)), rng.uniform(-0.05, 0.05, (3, 2))
    for beta in (0.0, 1e-7, -1e-7):
        layered_eq = solve(net, x, y, beta=beta, tol=1e-13)
        graph_eq = solve(net, x, y, beta=beta, tol=1e-13, method="newton")
        assert np.abs(layered_eq.voltages - graph_eq.voltages).max() < 1e-13
        if diode != "ideal":  # (ngspice settles ideal diodes as their piecewise-linear stand-in)
            sp = NgspiceCircuit(net).equilibrium(x, y, beta)
            assert np.abs(sp.voltages - layered_eq.voltages).max() < 1e-9
    graph = net.to_graph().graph
    elements = list(conductances(graph))
    assert len(elements) == sum(int(np.count_nonzero(w)) for w in net.weights + net.biases)
    inverted = [e for e in elements if e[3] is not None and e[3] < 0]
    assert len(inverted) == 6 * 5 + 5 * 4 and {e[3] for e in inverted} == {-4.0, -3.0}
    text = to_netlist(net, x[:1]).text
    assert text.count("bidir_amp params: gain=-4") == 6 and text.count("bidir_amp params: gain=-3") == 5
    assert text.count("__inv ") == len(inverted)


def test_graph_networks_refuse_a_malformed_inverting_conductance():
    from eqprop.circuits import OpAmp
    from eqprop.circuits.network import GraphNetwork

    class NonInverting(OpAmp):  # a model without an inverting form (as a characterised amplifier)
        inverting = False

    def graph(**edge):
        g = nx.Graph(amplifier=edge.pop("amplifier", None))
        g.add_node("in0", role="input", feature=0, sign=1.0)
        g.add_node("h", role="hidden")
        g.add_node("out0", role="output", readout=(0, 1.0))
        g.add_edge("in0", "h", g=1e-6)
        g.add_edge("h", "out0", **edge)
        return g

    GraphNetwork(graph(g_inv=1e-6, gain=2.0, driver="h"), 1, readout="nodes")  # the inverting half alone is fine
    for edge, msg in ((dict(g_inv=1e-6), "no gain"), (dict(g_inv=-1e-6, gain=2.0, driver="h"), "g_inv"),
                      (dict(g=1e-6, g_inv=float("nan"), gain=2.0, driver="h"), "g_inv"),
                      (dict(g=1e-6, g_inv=1e-6, gain=2.0, driver="h", amplifier=NonInverting()), "no inverting form")):
        with pytest.raises(NetworkError, match=msg):
            GraphNetwork(graph(**edge), 1, readout="nodes")
    GraphNetwork(graph(g=1e-6, g_inv=1e-6, gain=2.0, driver="h", amplifier=OpAmp()), 1, readout="nodes")  # an
    # op-amp's inverting loop drives the g_inv half


def test_crossbar_transient_settles_as_the_linear_ode_says():
    """A linear network laid out as crossbars, its wire nodes with their own capacitance: ngspice's settling time
    against the exact solution of C dV/dt = D s - K V from reset (a matrix exponential, outputs within 1% of
    their final values by the same rule), and the transient's span from the slowest mode (a dense generalized
    eigenproblem); a chain of wire nodes settles far slower than any one node's C / G."""
    from scipy.linalg import eigh, expm

    from eqprop.circuits.parasitics import wired
    from eqprop.circuits.solve_graph import compile_graph
    from eqprop.netlists.transient import node_time_constant

    net = layered([8, 4, 4], diode=None, gain=2.0, seed=7)
    graph = wired(net, 2e4, c_wire=3e-13)
    assert f"C_w0_0_0 w0_0_0 0 3e-13" in to_netlist(graph, np.zeros((1, 4)), analysis="tran",
                                                    transient=Transient(1e-12, 1e-6, 1e-9)).text
    x = np.random.default_rng(8).uniform(0, 1, (1, 4))
    s = settling(NgspiceCircuit(graph), x, capacitance=1e-12)
    cg = compile_graph(graph)
    c = np.array([graph.graph.nodes[n].get("capacitance") or 1e-12 for n in cg.free])
    K = cg.K.toarray()
    A = np.diag(cg.kappa) @ K
    slowest = 1.0 / eigh(0.5 * (A + A.T), np.diag(cg.kappa * c), eigvals_only=True)[0]
    assert node_time_constant(graph, 1e-12) == pytest.approx(slowest, rel=1e-8)
    assert slowest > 3 * max(c / K.diagonal())  # the wires' chains, not one node
    drive = cg.D.toarray() @ graph.encode_inputs(x)[0]
    final = np.linalg.solve(K, drive)
    outputs = np.flatnonzero(np.abs(cg.R.toarray()).sum(0))
    band = 0.01 * np.abs(final[outputs]).max()
    t = np.linspace(0, s.t_stop, 4001)
    step = expm(-(K / c[:, None]) * t[1])
    v, last = np.zeros_like(final), 0.0
    for k in range(1, len(t)):
        v = final + step @ (v - final)
        if np.abs(v[outputs] - final[outputs]).max() > band:
            last = t[k]
    np.testing.assert_allclose(s.final_outputs, final[outputs], rtol=1e-3, atol=1e-6)
    assert s.settling_time == pytest.approx(last, rel=0.03, abs=s.t_stop / 500)
