"""Mixed-signal co-simulation (ngspice analog core + Lava periphery in lockstep): equilibria, gradients,
converter bounds, loop stability, training and bad inputs."""
import os
import tempfile

import numpy as np
import pytest

pytest.importorskip("lava")
from eqprop.netlists import ngspice_version  # noqa: E402

if ngspice_version() is None:
    pytest.skip("libngspice is not installed", allow_module_level=True)

from eqprop.backends.cosim import CosimBackend  # noqa: E402
from eqprop.circuits import solve  # noqa: E402
from eqprop.circuits.energy import conductance_statistics, node_conductance  # noqa: E402
from eqprop.circuits.errors import InputError  # noqa: E402
from eqprop.circuits.gradient import resistive_exact_gradient  # noqa: E402
from eqprop.cosim.bounds import loop_limits, multiplier, quantization_bound  # noqa: E402
from eqprop.cosim.converters import ADC, DAC  # noqa: E402
from eqprop.cosim.loop import CoSimulation, CosimError  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def small():
    from eqprop.backends.base import ResistiveBackend
    from eqprop.learning.trainer import TrainConfig

    # Kendall's circuit at a small size: rails +-50 mV, amplifiers of gain 4, output pairs
    cfg = TrainConfig(hidden=[8], diode="shockley", diode_is=1e-7).resolve()
    net = ResistiveBackend.build_network(cfg, 8, 2)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 8))
    y = np.array([[0.05, -0.05], [-0.05, 0.05], [0.05, -0.05]])
    g_out = float(node_conductance(net)[-1].mean())
    return net, x, y, g_out


def native(net, x, y, beta):
    return {p: solve(net, x, y if b else None, b, tol=1e-13).voltages
            for p, b in (("free", 0.0), ("plus", beta), ("minus", -beta))}


def test_ideal_converters_settle_to_the_native_equilibria(small):
    net, x, y, g_out = small
    beta = 0.1 * g_out
    sim = CoSimulation(net, settle_to=1e-8)
    try:
        r = sim.run(x, y, beta, phases=("free", "plus", "minus"))
    finally:
        sim.close()
    ref = native(net, x, y, beta)
    for ph in ref:
        assert np.abs(r.volts[ph] - ref[ph]).max() < 1e-6, ph
    # the nudge moved the outputs: the co-simulated loop did something measurable
    assert np.abs(r.volts["plus"] - r.volts["free"]).max() > 1e-4
    assert r.nudger_ops > 0 and all(r.settling_time[p].min() > 0 for p in ref)
    assert all((r.energy[p] > 0).all() for p in ref)


def test_learner_commands_are_the_eqprop_update_and_follow_the_exact_gradient(small):
    net, x, y, g_out = small
    be = CosimBackend(net, settle_to=1e-8)
    try:
        for rel in (0.1, 0.003):
            beta = rel * g_out
            _, deltas = be.onchip_step(x, y, beta, [1.0] * 4)
            ref = native(net, x, y, beta)
            src = net.encode_inputs(x)
            layers = lambda v: np.split(v, np.cumsum(net.free_sizes)[:-1], axis=1)  # noqa: E731
            hi = conductance_statistics(net, src, layers(ref["plus"]))
            lo = conductance_statistics(net, src, layers(ref["minus"]))
            want = [-(a - b) / (2 * beta * be.cost_weight) for a, b in zip(hi, lo)]
            fa = np.concatenate([d.ravel() for d in deltas])
            fb = np.concatenate([w.ravel() for w in want])
            assert np.linalg.norm(fa - fb) / np.linalg.norm(fb) < 2e-3, rel
        # at the small beta the controller's update points along minus the exact gradient
        grads, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
        fg = -np.concatenate([g.ravel() for g in grads])
        assert fa @ fg / (np.linalg.norm(fa) * np.linalg.norm(fg)) >= 0.999
        # the host reads the commands from the Learner's register, the same numbers Lava's Var holds
        path = be.sim._register.filename
        assert np.array_equal(np.array(be.sim._register), np.asarray(be.sim._lava["learner"].commands.get()))
    finally:
        be.close()
    assert not os.path.exists(path)  # the register goes with the co-simulation


def test_differential_hidden_layers_settle_and_learn_as_native():
    """Two differential hidden layers (the deep default): the netlist's inverting amplifiers settle the co-simulated
    network to native, and the Learner's statistics, with each hidden layer driving [u, -u], are the EqProp update
    of every conductance, the inverting outputs' rows included."""
    from eqprop.backends.base import ResistiveBackend
    from eqprop.learning.trainer import TrainConfig

    # dyadic gains: the default 4 sqrt(6) needs 8 fraction bits, and 24-bit codes times it overflow the accumulators
    cfg = TrainConfig(hidden=[6, 5], diode="shockley", diode_is=1e-7, gain=[8.0, 4.0]).resolve()
    net = ResistiveBackend.build_network(cfg, 8, 2)
    assert net.hidden_pairs and net.weights[1].shape == (12, 5)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (2, 8))
    y = np.array([[0.05, -0.05], [-0.05, 0.05]])
    beta = 0.1 * float(node_conductance(net)[-1].mean())
    be = CosimBackend(net, settle_to=1e-8)
    try:
        ref = native(net, x, y, beta)
        r = be.sim.run(x, y, beta, phases=("free", "plus", "minus"))
        for ph in ref:
            assert np.abs(r.volts[ph] - ref[ph]).max() < 1e-6, ph
        _, deltas = be.onchip_step(x, y, beta, [1.0] * 6)
        src = net.encode_inputs(x)
        layers = lambda v: np.split(v, np.cumsum(net.free_sizes)[:-1], axis=1)  # noqa: E731
        hi = conductance_statistics(net, src, layers(ref["plus"]))
        lo = conductance_statistics(net, src, layers(ref["minus"]))
        want = [-(a - b) / (2 * beta * be.cost_weight) for a, b in zip(hi, lo)]
        assert [d.shape for d in deltas] == [w.shape for w in want]
        fa = np.concatenate([d.ravel() for d in deltas])
        fb = np.concatenate([w.ravel() for w in want])
        assert np.linalg.norm(fa - fb) / np.linalg.norm(fb) < 2e-3
    finally:
        be.close()


def test_n_bit_converters_stay_inside_the_derived_bound(small):
    net, x, y, g_out = small
    beta = 0.3 * g_out
    adc, dac = ADC(bits=10, v_range=1.0), DAC(bits=10, i_range=beta * 1.2)
    sim = CoSimulation(net, adc=adc, dac=dac, settle_to=1e-8)
    try:
        r = sim.run(x, y, beta, phases=("plus", "minus"))
    finally:
        sim.close()
    ref = native(net, x, y, beta)
    assert r.adc_clipped == 0 and r.dac_clipped == 0
    for phase, sign in (("plus", 1), ("minus", -1)):
        bound = quantization_bound(net, sign * beta, adc.lsb, dac.lsb)
        err = np.abs(r.volts[phase] - ref[phase]).max()
        assert 0 < err <= bound, phase
        assert bound < 10 * err, phase  # tight enough to mean something


def test_the_loop_rings_and_goes_unstable_where_the_derivation_says(small):
    net, x, y, g_out = small
    beta = 1.5 * g_out  # loop gain b = 2 beta / G = 3 > 1: a stability limit exists
    lim = loop_limits(net, 1e-12, beta)
    assert lim["t_ring"] < lim["t_unstable"] < np.inf
    assert multiplier(0.9 * lim["t_unstable"], lim["tau"], lim["loop_gain"]) > -1
    assert multiplier(1.1 * lim["t_unstable"], lim["tau"], lim["loop_gain"]) < -1
    dac = DAC(bits=24, i_range=beta * 0.5)
    with pytest.raises(CosimError, match="stability limit"):
        CoSimulation(net, period=1.2 * lim["t_unstable"], periods_per_phase=40, dac=dac).run(
            x[:1], y[:1], beta, phases=("plus",))
    amplitude = {}
    for name, T in (("safe", 0.5 * lim["t_unstable"]), ("beyond", 1.3 * lim["t_unstable"])):
        sim = CoSimulation(net, period=T, periods_per_phase=60, dac=dac, allow_unstable=True)
        try:
            r = sim.run(x[:1], y[:1], beta, phases=("plus",), record=True)
        finally:
            sim.close()
        d = r.trace[:, sim.pos[0]] - r.trace[:, sim.neg[0]]
        amplitude[name] = np.abs(np.diff(d[-6:])).max()
        if name == "safe":
            want = solve(net, x[:1], y[:1], beta, tol=1e-13).voltages
            assert np.abs(r.volts["plus"] - want).max() < 1e-5
    assert amplitude["safe"] < 1e-6 < 1e-2 < amplitude["beyond"]


def test_bad_converter_and_loop_settings_say_what_is_wrong(small):
    net, x, y, g_out = small
    with pytest.raises(InputError, match="ADC bits"):
        ADC(bits=1)
    with pytest.raises(InputError, match="DAC range"):
        DAC(i_range=-1.0)
    with pytest.raises(InputError, match="period"):
        CoSimulation(net, period=-1e-9)
    with pytest.raises(InputError, match="periods_per_phase"):
        CoSimulation(net, periods_per_phase=1)
    sim = CoSimulation(net)
    try:
        with pytest.raises(InputError, match="unknown phase"):
            sim.run(x, y, g_out, phases=("free", "sideways"))
        with pytest.raises(InputError, match="targets"):
            sim.run(x, None, g_out, phases=("plus",))
    finally:
        sim.close()


def test_training_with_the_cosim_backend_programs_through_the_device_model(tmp_path):
    from eqprop.learning.runs import train
    from eqprop.learning.trainer import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="momentum 0"):
        TrainConfig(backend="cosim", momentum=0.9).resolve().validate()
    with pytest.raises(ConfigError, match="the native backend has none"):
        TrainConfig(converters="bits=10").resolve().validate()
    with pytest.raises(ConfigError, match="whole number"):
        TrainConfig(backend="cosim", converters="bits=10 latency=0.5").resolve().validate()
    with pytest.raises(ConfigError, match="drop --noise-window"):
        TrainConfig(backend="cosim", noise_capacitance=1e-12, noise_window=1e-6).resolve().validate()
    cfg = TrainConfig(backend="cosim", hidden=[8], epochs=1, batch_size=4, n_train=4, n_test=4, diode="shockley",
                      diode_is=1e-7, device="bounded", converters="bits=12 latency=1 range=0.2",
                      noise_capacitance=1e-12)
    last = train(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    assert np.isfinite(last["train_loss"]) and 0 <= last["test_accuracy"] <= 1


def test_a_learner_that_would_overflow_is_refused(small):
    net, x, y, g_out = small
    sim = CoSimulation(net, adc=ADC(bits=32, v_range=0.25))
    try:
        with pytest.raises(InputError, match="overflows the Learner's 64-bit accumulators"):
            sim.run(x, y, 0.1 * g_out, phases=("free", "plus", "minus"), learn=("plus", "minus"), rates=[1.0] * 4)
    finally:
        sim.close()


def test_a_periphery_that_stops_answering_is_bounded(small, monkeypatch):
    """Lava can hang instead of raising when a ProcessModel fails in its subprocess: the run's deadline
    interrupts the wait on its channel and says so, instead of hanging."""
    import time

    net, x, y, g_out = small
    sim = CoSimulation(net, timeout=3.0)
    sim._build_lava()
    nudger = sim._lava["nudger"]
    calls = []

    def probe_after_first_calls(real):
        def probe():
            calls.append(1)
            return real() if len(calls) <= 5 else False  # a dead far end: nothing ever arrives
        return probe

    sim.run(x[:1], phases=("free",))  # builds the channels
    recv = nudger.reply()
    monkeypatch.setattr(recv, "probe", probe_after_first_calls(recv.probe))
    t0 = time.time()
    with pytest.raises(CosimError, match="no answer within 3 s"):
        sim.run(x[:1], phases=("free",))
    assert time.time() - t0 < 30 and sim._lava is None
    # ngspice was halted, not left running in its thread: the next run works (with a new Lava network)
    r = sim.run(x[:1], phases=("free",))
    sim.close()
    assert np.abs(r.volts["free"] - solve(net, x[:1], tol=1e-13).voltages).max() < 1e-6


def test_ctrl_c_stops_a_cosimulated_transient_within_two_seconds(small, terminal_ctrl_c):
    """SIGINT while ngspice integrates (the bridge runs in ngspice's thread, this one waits): a KeyboardInterrupt
    within 2 s, ngspice halted, Lava abandoned; the next run works."""
    import os
    import subprocess
    import time

    net, x, y, g_out = small
    sim = CoSimulation(net, periods_per_phase=4000)  # a long transient: about 10 s
    try:
        killer = subprocess.Popen(["bash", "-c", f"sleep 2; kill -INT {os.getpid()}"])
        t0 = time.time()
        with pytest.raises(KeyboardInterrupt):
            sim.run(x, phases=("free",))
        killer.wait()
        assert time.time() - t0 < 2.0 + 2.0 and sim._lava is None
        sim.fixed_P = sim.P = 80
        r = sim.run(x[:1], phases=("free",))
        assert np.abs(r.volts["free"] - solve(net, x[:1], tol=1e-13).voltages).max() < 1e-5
    finally:
        sim.close()


# --- converters, latency, noise ---

def test_a_converter_spec_parses_checks_and_prices_its_conversions():
    from eqprop.cosim.converters import WALDEN_FOM, Converters

    c = Converters.parse("bits=10 latency=1 range=0.1 noise=1e-4 input_bits=4 input_range=0.5")
    q, clipped = c.quantise_inputs([[0.0, 0.1, 0.26, 0.49, 0.6, -0.7]])  # steps of 1/16 V, codes -7..7
    assert np.allclose(q, [[0.0, 0.125, 0.25, 0.4375, 0.4375, -0.4375]]) and clipped == 3  # 0.49 V is past the top code (0.4375 V + half a step)
    assert (c.adc_bits, c.dac_bits, c.latency, c.adc_range, c.adc_noise) == (10, 10, 1, 0.1, 1e-4)
    assert Converters.parse(None) == Converters() and Converters.parse("  ") == Converters()
    assert Converters.parse("adc_bits=8 dac_bits=12").dac(1e-6).bits == 12
    ideal = Converters.parse("bits=10 range=0.1").adc()
    assert ideal.enob == 10 and ideal.energy == pytest.approx(WALDEN_FOM * 1024)
    # input noise of one lsb rms costs log2(sqrt(13)) = 1.85 bits
    noisy = ADC(bits=10, v_range=0.1, noise=0.2 / 1024)
    assert noisy.enob == pytest.approx(10 - 0.5 * np.log2(13))
    for bad, what in (("bits=1", "ADC bits"), ("lat=1", "not key=value"), ("latency=1.5", "whole number"),
                      ("latency=-1", "latency"), ("latency=9", "latency"), ("range=0", "ADC range"),
                      ("noise=-1", "ADC noise"), ("dac_range=-2", "DAC range"), ("fom=1", "figure of merit"),
                      ("bits=ten", "not a number"), ("bits", "not key=value")):
        with pytest.raises(InputError, match=what):
            Converters.parse(bad)


def test_latency_moves_the_stability_limit_where_the_characteristic_roots_say():
    """Closed forms for L = 0 (ln((b+1)/(b-1))) and L = 1 (ln(b/(b-1))) against the roots of
    z^(L+1) - e z^L + b (1 - e); a loop gain b <= 1 is stable at any period and latency (small gain);
    each latency shortens the limit."""
    from eqprop.cosim.bounds import _first_crossing, _radii, _radius, stability_limit

    for b in (1.05, 1.5, 3.25, 20.0):
        limits = [stability_limit(b, L) for L in range(5)]
        for L in (0, 1):
            assert _first_crossing(lambda x: _radius(x, b, L)[0] >= 1.0) == pytest.approx(limits[L], rel=1e-9)
        assert all(a > c for a, c in zip(limits, limits[1:]))
        for L in range(5):  # just inside the limit every root is inside the unit circle, just past it one is out
            assert _radius(0.999 * limits[L], b, L)[0] < 1 < _radius(1.001 * limits[L], b, L)[0]
    for b in (0.2, 0.9, 0.999):
        assert all(stability_limit(b, L) == np.inf for L in range(5))
        xs = np.geomspace(1e-3, 50, 300)
        assert _radii(xs, b, 3).max() < 1


@pytest.mark.parametrize("latency", [1, 2])
def test_a_loop_with_latency_settles_below_its_limit_and_oscillates_past_it(small, latency):
    """The co-simulated loop with L periods between a sample and its DAC current, at 0.9 and 1.1 of the derived
    limit: the first decays, the second keeps a large oscillation. 1.1 x the L-period limit is below the limit
    without latency, so what makes it unstable is the latency."""
    from eqprop.experiments.cosim import _verdict

    net, x, y, g_out = small
    beta = 1.5 * g_out
    lim = loop_limits(net, 1e-12, beta, latency=latency)
    assert 1.1 * lim["t_unstable"] < 0.9 * loop_limits(net, 1e-12, beta)["t_unstable"]
    verdicts = {}
    for ratio in (0.9, 1.1):
        sim = CoSimulation(net, period=ratio * lim["t_unstable"], periods_per_phase=80, dac=DAC(24, 0.5 * beta),
                           allow_unstable=True, latency=latency)
        try:
            r = sim.run(x[:1], y[:1], beta, phases=("plus",), record=True)
        finally:
            sim.close()
        d = r.trace[:, sim.pos[0]] - r.trace[:, sim.neg[0]]
        ripple, earlier, verdicts[ratio] = _verdict(d)
        if ratio > 1:
            assert ripple > 1e-2, ripple
    assert verdicts[0.9] in ("settles", "rings, decaying") and verdicts[1.1] == "oscillates: unstable", verdicts
    with pytest.raises(CosimError, match="1 period"):
        CoSimulation(net, period=1.2 * loop_limits(net, 1e-12, beta, latency=1)["t_unstable"], latency=1,
                     dac=DAC(24, 0.5 * beta)).check_period(beta)


def test_what_the_loop_reads_carries_the_circuits_thermal_noise(small):
    """Sampled (the default): every conversion's spread is the noise model's rms at the node (mean ratio within
    5% over the nodes). In the transient (a noise source across every resistor): the spread ngspice makes is the model's
    without the diodes' shot noise, which the transient does not have (mean ratio within 10%; statistical)."""
    from eqprop.circuits.noise import ThermalNoise

    net, x, y, g_out = small
    x1 = x[:1]
    v = solve(net, x1, tol=1e-13).voltages[0]
    for mode, shot, within in (("sampled", True, 0.05), ("transient", False, 0.10)):
        model = np.sqrt(np.diag(ThermalNoise(1e-12, shot=shot).covariance(net, v)))
        sim = CoSimulation(net, periods_per_phase=500, temperature=ThermalNoise(1e-12).temperature, noise=mode,
                           adc=ADC(bits=24, v_range=0.25))
        try:
            r = sim.run(x1, phases=("free",), record=True)
        finally:
            sim.close()
        spread = (r.code_trace[100:] * r.adc_lsb).std(0)
        assert abs(np.mean(spread / model) - 1) < within, (mode, spread / model)
    with pytest.raises(InputError, match="noise must be one of"):
        CoSimulation(net, temperature=300.0, noise="pink")


def test_what_the_periphery_gets_does_not_depend_on_recording(small):
    """Between phase ends only the output pairs are read and converted (a recording run reads and keeps every
    node): with thermal noise and a noisy ADC, the same seed gives the same codes, commands and clipping."""
    net, x, y, g_out = small
    out = []
    for record in (True, False):
        sim = CoSimulation(net, temperature=300.0, adc=ADC(bits=14, v_range=0.06, noise=2e-4), seed=3)
        try:
            out.append(sim.run(x, y, 0.1 * g_out, phases=("free", "plus", "minus"), learn=("plus", "minus"),
                               rates=[1e-3] * 4, record=record))
        finally:
            sim.close()
    rec, plain = out
    assert plain.code_trace is None and rec.code_trace.shape == (rec.periods + 1, rec.n_free)
    for ph in ("free", "plus", "minus"):
        assert np.array_equal(rec.codes[ph], plain.codes[ph])
    assert all(np.array_equal(a, b) for a, b in zip(rec.commands, plain.commands))
    assert any(np.abs(c).sum() > 0 for c in plain.commands)
    assert rec.adc_clipped == plain.adc_clipped > 0  # the narrow range clips: the count does not depend on it


def test_predictions_come_through_the_adc_and_conversions_are_priced(small):
    from eqprop.cosim.converters import Converters

    net, x, y, g_out = small
    conv = Converters(adc_bits=6, adc_range=0.25, latency=1, input_bits=8)
    backend = CosimBackend(net.copy(), converters=conv)
    try:
        eq = backend.settle(x)
        r = backend.figures["last"]
    finally:
        backend.close()
    lsb = conv.adc().lsb
    codes = eq.voltages / lsb
    assert np.allclose(codes, np.rint(codes), atol=1e-9)  # what the trainer sees is the ADC's codes
    assert np.abs(eq.voltages - r.volts["free"]).max() <= 0.5 * lsb + 1e-12
    assert np.abs(eq.voltages - r.volts["free"]).max() > 1e-4  # and 6 bits are visibly coarse
    assert r.input_clipped == 0
    n_read = 2 * net.n_targets  # output pairs
    assert r.converter_energy["free"] == pytest.approx(np.full(len(x), backend.sim.P * n_read * conv.adc().energy))


def test_a_real_dac_settles_slowly_and_leaks_through_its_output_resistance(small):
    """Settling (a time constant on every code change) delays the loop but leaves the equilibrium where an ideal
    DAC puts it; an output resistance to ground at each DAC terminal is a leak on the output nodes: in the netlist,
    and pulling the nudged outputs toward 0 V."""
    from eqprop.cosim.converters import Converters

    net, x, y, g_out = small
    beta = 0.1 * g_out
    runs = {}
    for name, conv in (("ideal", Converters()), ("settling", Converters(dac_settle=3e-7)),
                       ("leaky", Converters(dac_rout=0.2 / g_out))):
        sim = CoSimulation(net, periods_per_phase=120, converters=conv)
        try:
            runs[name] = sim.run(x[:1], y[:1], beta, phases=("plus",), record=True)
        finally:
            sim.close()
    want = solve(net, x[:1], y[:1], beta, tol=1e-13).voltages
    assert np.abs(runs["settling"].volts["plus"] - want).max() < 1e-6
    assert np.abs(runs["settling"].trace[3] - runs["ideal"].trace[3]).max() > 1e-6  # the nudge arrived later
    out = slice(sum(net.free_sizes[:-1]), None)
    assert np.abs(runs["leaky"].volts["plus"][:, out]).mean() < 0.9 * np.abs(runs["ideal"].volts["plus"][:, out]).mean()
    from eqprop.netlists import Drive, Transient, to_netlist

    drive = Drive(np.array([0.0, 1e-6]), np.vstack([x[0], x[0]]), np.array([0.0, 1e-7]), 1e-7, dac_rout=5e3)
    text = to_netlist(net, x[:1], analysis="tran", transient=Transient(1e-12, 1e-6, 1e-7), control=False,
                      drive=drive).text
    leaks = [line.split() for line in text.splitlines() if line.startswith("R_dacout")]
    assert len(leaks) == 2 * net.n_targets and all(r[2] == "0" and float(r[3]) == 5e3 for r in leaks)
    with pytest.raises(InputError, match="output resistance"):
        Converters(dac_rout=0.0)
    with pytest.raises(InputError, match="settling"):
        Converters(dac_settle=-1e-9)


def test_a_track_and_hold_loads_its_node_lags_by_its_switch_and_leaves_the_equilibrium(small):
    """A hold capacitor per node behind a switch: the converters read the capacitors, which end where the nodes
    end (the hold does not move the equilibrium); a slow switch (RC of 4 periods) is waited for, and the settling
    takes longer with the hold capacitance loading every node."""
    from eqprop.cosim.converters import Converters

    net, x, y, g_out = small
    beta = 0.1 * g_out
    want = solve(net, x[:2], y[:2], beta, tol=1e-13).voltages
    settle = {}
    for name, conv in (("ideal", Converters()), ("hold", Converters(hold=1e-12, ron=1e3)),
                       ("slow switch", Converters(hold=1e-13, ron=1e7))):
        sim = CoSimulation(net, converters=conv, settle_to=1e-7)
        try:
            r = sim.run(x[:2], y[:2], beta, phases=("plus",), record=True)
        finally:
            sim.close()
        assert np.abs(r.adc_volts["plus"] - want).max() < 1e-6, name
        settle[name] = r.settling_time["plus"].mean()
        if name == "slow switch":
            assert sim.tau_track > 3 * sim.period
    assert settle["hold"] > 1.5 * settle["ideal"] and settle["slow switch"] > settle["ideal"]
    with pytest.raises(InputError, match="track-and-hold capacitance"):
        Converters(hold=1.0)
    with pytest.raises(InputError, match="hold_time"):
        Converters(hold=1e-13, hold_time=1.0)


def test_inputs_as_norton_equivalents_are_the_same_circuit(small):
    """The co-simulation writes the ideal input drivers as Norton equivalents (a conductance and a current source
    per node they feed): the same trace at every period boundary, the same energy (the drivers' power recomputed),
    and the same thermal noise current per node as the parallel input resistors' noise sources."""
    import re

    from eqprop.netlists import Drive, Transient, to_netlist

    net, x, y, g_out = small
    beta = 0.1 * g_out
    out = {}
    for transform in (False, True):
        sim = CoSimulation(net, periods_per_phase=12, source_transform=transform)
        try:
            out[transform] = sim.run(x, y, beta, phases=("free", "plus"), record=True)
        finally:
            sim.close()
    a, b = out[False], out[True]
    assert np.abs(a.trace - b.trace).max() < 1e-9
    for ph in a.energy:
        assert np.allclose(a.energy[ph], b.energy[ph], rtol=1e-6, atol=0), ph
        assert (a.energy[ph] > 0).all()
    # the netlists: no input resistor is left in the transformed one, and its noise per node is theirs summed
    T = 1e-7
    decks = {}
    for transform in (False, True):
        drive = Drive(np.array([0.0, 2 * T]), np.vstack([x[0], x[0]]), T * np.arange(3), max_step=T,
                      source_transform=transform)
        decks[transform] = to_netlist(net, x[:1], analysis="tran", drive=drive, control=False,
                                      transient=Transient(1e-12, 2 * T, T / 10, noise_temperature=300.0)).text
    inputs = {n for n in net.to_graph().sources if str(n).startswith("in")}
    assert not re.search(r"^V_in\d", decks[True], re.M) and not re.search(r"^R_in\d", decks[True], re.M)
    assert len(inputs) > 0 and re.search(r"^R_in\d", decks[False], re.M)

    def noise_power(text):  # node -> sum of noise amplitude^2 over the sources touching it (inputs only)
        per = {}
        sources = r"^I_nz_(in\w+?__|norton__)(\w+) (\S+) (\S+) dc 0 trrandom\(2 \S+ 0 (\S+) 0\)"
        for m in re.finditer(sources, text, re.M):
            node = m.group(2)
            per[node] = per.get(node, 0.0) + float(m.group(5)) ** 2
        return per

    pa, pb = noise_power(decks[False]), noise_power(decks[True])
    assert pa.keys() == pb.keys() and len(pa) > 0
    for node in pa:
        assert pb[node] == pytest.approx(pa[node], rel=1e-12)


def test_the_command_register_falls_back_from_dev_shm_and_a_place_it_cannot_write_is_one_clear_error(
        small, tmp_path, monkeypatch):
    net = small[0]
    sim = object.__new__(CoSimulation)  # only the register's own code: no ngspice, no Lava
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if p == "/dev/shm" else real_access(p, m))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = sim._open_register(net)
    n = sum(w.size for w in net.weights) + sum(b.size for b in net.biases)
    assert os.path.dirname(path) == str(tmp_path) and os.path.getsize(path) == 8 * n
    assert sim._register.shape == (n,) and not sim._register.any()
    sim._close_register()
    assert not os.path.exists(path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(CosimError, match="command register .*set TMPDIR"):
        sim._open_register(net)
    assert os.listdir(tmp_path) == []


def test_registers_left_by_killed_processes_are_removed_and_live_ones_kept(small, tmp_path, monkeypatch):
    """A SIGKILLed co-simulation leaves its register behind (no finalizer runs): the next one removes the files
    of processes that no longer exist, and leaves a live process's and other files alone."""
    import subprocess
    import sys

    from eqprop.cosim.loop import REGISTER_PREFIX

    net = small[0]
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if p == "/dev/shm" else real_access(p, m))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its process id now names no process
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [f"{REGISTER_PREFIX}{gone.pid}-abc.f64", f"{REGISTER_PREFIX}{live.pid}-def.f64",
                 f"{REGISTER_PREFIX}x-ghi.f64", "notes.f64"]
        for name in names:
            (tmp_path / name).write_bytes(b"\0" * 8)
        sim = object.__new__(CoSimulation)
        path = sim._open_register(net)
        assert os.path.basename(path).startswith(f"{REGISTER_PREFIX}{os.getpid()}-")
        left = set(os.listdir(tmp_path))
        assert names[0] not in left and set(names[1:]) <= left
        sim._close_register()
    finally:
        live.kill()
        live.wait()
