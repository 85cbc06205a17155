"""The bit-accurate Loihi path: integer-only neuron code, Lava's bit-accurate Dense, the emulator bit for bit
against the Lava run, the state widths, the derived error bound, and the backend."""
import ast
import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eqprop.circuits import NetworkError, layered, solve
from eqprop.circuits.devices import PiecewiseLinearDiode
from eqprop.neuromorphic import LavaSession
from eqprop.neuromorphic.loihi import microcode
from eqprop.neuromorphic.loihi.bound import error_bound
from eqprop.neuromorphic.loihi.emulator import emulate
from eqprop.neuromorphic.loihi.map import build_program
from eqprop.neuromorphic.loihi.microcode import check_widths


def case(sizes=(16, 10, 8, 6), diode="ideal", seed=3, batch=6):
    net = layered(list(sizes), diode=diode, rails=(-0.05, 0.05), gain=3.0, seed=seed)
    rng = np.random.default_rng(seed)
    return net, rng.uniform(0, 1, (batch, sizes[0] // 2)), rng.uniform(-0.05, 0.05, (batch, sizes[-1] // 2))


# What a per-step neuron or rule path may not use: Loihi 2 microcode has add, multiply, shift, compare, select and
# bitwise logic on integers (no divider, no floating point), so no division or remainder of any kind, no power, no
# float literal or dtype, no float function of math or numpy.
FLOAT_OPS = (ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
FLOAT_NAMES = {"float", "float16", "float32", "float64", "float128", "float_", "double", "half", "single",
               "longdouble", "complex", "complex64", "complex128", "divmod", "pow", "round", "math"}
FLOAT_FUNCTIONS = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "sin", "cos", "tan",
                   "tanh", "arctan", "arctanh", "sinh", "cosh", "divide", "true_divide", "floor_divide", "mod",
                   "remainder", "fmod", "divmod", "power", "float_power", "reciprocal", "around", "rint", "floor",
                   "ceil", "trunc", "mean", "average", "std", "var", "interp", "hypot", "sigmoid", "isclose",
                   "allclose", "nan", "inf", "pi", "e"}


def integer_violations(tree) -> list:
    """Every construct in ``tree`` that integer microcode could not run, as 'line: what'."""
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        op = node.op if isinstance(node, (ast.BinOp, ast.AugAssign)) else None
        if isinstance(op, FLOAT_OPS):
            found.append(f"{line}: {type(op).__name__}")
        if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
            found.append(f"{line}: literal {node.value!r}")
        if isinstance(node, ast.Name) and node.id in FLOAT_NAMES:
            found.append(f"{line}: {node.id}")
        if isinstance(node, ast.Attribute) and (node.attr in FLOAT_NAMES or node.attr in FLOAT_FUNCTIONS):
            found.append(f"{line}: .{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FLOAT_FUNCTIONS:
            found.append(f"{line}: {node.func.id}()")  # from numpy import exp
    return found


def _per_step_paths() -> list:
    """The code a chip runs every time step: the neuron microcode, the schedule counters, and the run_spk of the
    bit-accurate neuron and input player models (read from their files: importing Lava here would set
    multiprocessing's start method). The emulator is the host's batched twin, checked bit for bit instead."""
    root = Path(microcode.__file__).parent
    trees = [(fn.__qualname__, ast.parse(textwrap.dedent(inspect.getsource(fn)))) for fn in
             (microcode.step, microcode._diode, microcode.mul_shift, microcode.encode, microcode.Schedule,
              microcode.measured_step, microcode.calibrate, microcode.calibration_send, microcode.cal_step,
              microcode._drive, microcode._record)]
    for path in (root / "proc" / "neurons" / "models.py", root / "proc" / "player" / "models.py"):
        runs = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name == "run_spk"]
        assert len(runs) == 1, path
        trees.append((f"{path.parent.name}.run_spk", runs[0]))
    # the on-chip learning path's integer neurons (their node update, their measured leak, their epilogue codes)
    path = root.parent / "simulation" / "proc" / "neurons" / "models.py"
    names = ("_relax_int", "_calibrate_int", "_encode_int")
    found = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name in names]
    assert len(found) == len(names), path
    trees += [(f"TaggedNeurons.{n.name}", n) for n in found]
    from eqprop.neuromorphic.onchip.map import int_codes

    trees.append(("onchip.map.int_codes", ast.parse(textwrap.dedent(inspect.getsource(int_codes)))))
    return trees


def test_the_neuron_program_is_integer_only():
    """No division or remainder (/, //, %), power, float literal, float dtype or float function of math or numpy
    in anything the neuron or the player runs per step (the host computes reciprocals, beta and targets once)."""
    for name, tree in _per_step_paths():
        assert integer_violations(tree) == [], name


@pytest.mark.parametrize("planted", [
    "drive = drive // G", "v = v % 7", "v = v / 2", "v = v ** 2", "v *= 1.5", "v //= 3", "v %= 3",
    "v = v.astype(float)", "v = np.zeros(3, dtype=np.float32)", "v = np.exp(v)", "v = math.sqrt(v)",
    "v = np.true_divide(v, 3)", "v = round(v)", "v = np.floor_divide(v, 3)", "v = divmod(v, 3)[0]",
    "v = exp(v)", "v = np.float64(v)", "v = v * np.pi", "v = np.mean(v)"])
def test_the_integer_check_fails_on_planted_float_work(planted):
    """Each planted construct, added to the neuron's step, is found (so the test above can fail)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(microcode.step)))
    tree.body[0].body.insert(1, ast.parse(planted).body[0])
    assert integer_violations(tree), planted


def test_the_schedule_counters_follow_the_host_schedule():
    """The counters the neurons keep (add, compare, select) give the same sample, step, phase and step in the
    phase as the host's division-based schedule, over several samples of 1 to 3 phases."""
    for steps, phases, pre in ((1, 1, 1), (3, 2, 1), (5, 3, 1), (4, 1, 1), (3, 2, 3), (1, 1, 3)):
        clock = microcode.Schedule(steps, phases, pre)
        for t in range(1, 4 * (pre + steps * phases) + 2):
            clock.tick()
            sample, local = microcode.schedule_slot(t, steps, phases, pre)
            phase = 0 if local < pre else (local - pre) // steps
            count = 0 if local < pre else local - pre + 1 - phase * steps
            assert (clock.sample, clock.local, clock.phase, clock.count) == (sample, local, phase, count)
            assert clock.slot == sample * phases + phase


def test_the_learning_rules_are_integer_products():
    """The on-chip rules are sums of products of traces, integers and powers of two: nothing the learning
    engine would have to round from a float."""
    import re

    from eqprop.neuromorphic.onchip.map import rule_strings

    token = re.compile(r"\s*(2\^-?[0-9]+|[xyu][0-9]+|[wdt]|[0-9]+|[-+*()])")
    for e in (-3, 0, 2):
        for frac in (0, 3):
            for key, rule in rule_strings(e, frac).items():
                rest, pos = rule.strip(), 0
                while pos < len(rest):
                    m = token.match(rest, pos)
                    assert m, f"{key} = {rule}: not an integer product at {rest[pos:]!r}"
                    pos = m.end()
    assert token.match("0.5", 0).end() != 3  # a float factor stops at its point


def test_every_state_is_an_integer_of_its_width():
    net, x, y = case()
    prog = build_program(net, 1.0, alpha=0.5, threshold=1e-4, betas=(0.0, 1e-7))
    r = emulate(prog, prog.sources_int(net.encode_inputs(x)), prog.targets_int(y), steps=40, phases=2, peaks=True)
    assert all(s.dtype == np.int64 for s in r["states"])
    check_widths(r["peaks"])
    assert 0 < r["peaks"]["v"] < 2**23 and r["peaks"]["a_in"] > 0
    # the check fails when a state does not fit: map the currents 2^6 finer than the mapping chose
    for d in prog.dense:
        d.weight_exp += 6 if d.role != "partner" else 0
    for layer in prog.layers:
        layer.rs += 6
        layer.bias = layer.bias << 6
    r = emulate(prog, prog.sources_int(net.encode_inputs(x)), None, steps=40, peaks=True)
    with pytest.raises(OverflowError, match="i_acc needed"):
        check_widths(r["peaks"])


@pytest.mark.parametrize("binary,leak", [(False, "reciprocal"), (True, "reciprocal"), (False, "measured"),
                                         (True, "measured")])
def test_emulator_equals_the_lava_run_bit_for_bit(binary, leak):
    """Three phases (free, +beta, -beta) of a 2-hidden-layer network through SamplePlayer, LoihiNeurons and
    Lava's own Dense (PyDenseModelBitAcc): every state, spike count and silence step equals the emulator's
    (with a measured leak, the calibration steps' messages and conductances included)."""
    net, x, y = case(batch=3)
    prog = build_program(net, 1.0, alpha=0.5, threshold=4e-3 if binary else 1e-4, binary=binary,
                         betas=(0.0, 2e-7, -2e-7), leak=leak)
    s, t = prog.sources_int(net.encode_inputs(x)), prog.targets_int(y)
    emu = emulate(prog, s, t, steps=24, phases=3, peaks=True)
    with LavaSession(timeout=240) as session:
        got = session.loihi(prog, s, t, 24, 3)
    for a, b in zip(emu["states"], got["states"]):
        assert np.array_equal(a, b)
    assert np.array_equal(emu["spikes"], got["spikes"]) and emu["spikes"].sum() > 0
    assert np.array_equal(emu["last_spike"], got["last_spike"])
    assert emu["peaks"] == got["peaks"]


@pytest.mark.parametrize("diode,binary,threshold,leak", [
    ("ideal", False, 0.0, "reciprocal"), ("ideal", False, 1e-3, "reciprocal"), ("ideal", True, 2e-3, "reciprocal"),
    ("pwl", False, 1e-4, "reciprocal"), ("ideal", False, 1e-2, "reciprocal"), ("pwl", True, 8e-3, "reciprocal"),
    ("ideal", False, 1e-3, "measured"), ("pwl", False, 1e-4, "measured"), ("pwl", True, 8e-3, "measured")])
def test_equilibrium_error_within_the_derived_bound(diode, binary, threshold, leak):
    """Free and nudged (+-beta, and strong nudges of 10 and 30 output conductances, where the nudge's own
    conductance, the partner's unsent remainder and the target's rounding dominate) on two hidden layers: the
    integer equilibrium is within the bound derived from the mantissas, the LSB and the threshold, and the bound
    is not vacuous (per sample a median within 20x, over the batch within 50x of the largest error measured). The bound holds
    once the network is silent: binary spikes carry one quantum per step, so 1 V of input at a 2 mV quantum
    takes about 500 steps to arrive."""
    from eqprop.backends.base import mean_output_conductance

    net, x, y = case(diode=diode, batch=8)
    src = net.encode_inputs(x)
    steps = 900 if binary else 600  # a strong nudge settles in about 450 steps at alpha 0.5
    g_out = mean_output_conductance(net)
    tightness = []
    for beta in (0.0, 2e-7, -2e-7, 10 * g_out, 30 * g_out):
        prog = build_program(net, 1.0, alpha=0.5, threshold=threshold, binary=binary, betas=(beta,), leak=leak)
        r = emulate(prog, prog.sources_int(src), prog.targets_int(y), steps=steps, phases=1, peaks=True)
        silent = r["last_spike"][0] < steps
        if threshold > 0:
            assert silent.all()  # silent before the end
        ref = solve(net, x, y if beta else None, beta, tol=1e-13).layers
        got = [prog.volts(s[0]) for s in r["states"]]
        err = np.max(np.hstack([np.abs(a - b) for a, b in zip(got, ref)]), axis=1)
        bound = error_bound(prog, src, ref, beta, r["active_steps"], y if beta else None)
        assert (err[silent] <= bound[silent]).all(), (beta, err, bound)
        tightness += list(bound[silent] / np.maximum(err[silent], prog.lsb))
        if silent.any():
            assert bound[silent].max() <= 50 * max(err[silent].max(), prog.lsb)
    assert np.median(tightness) <= 20, tightness  # measured 4-12


def test_a_measured_leak_follows_synapses_reprogrammed_after_mapping():
    """The synapses learn: every conductance of a mapped 2-hidden-layer network moves down by up to half and only
    the Dense mantissas are reprogrammed (the first mapping's scales; the neurons untouched). With a measured
    leak the neurons settle to the new network's equilibrium (within its derived bound, as a fresh mapping
    does); with the host's reciprocals of the old conductances they do not (tens of mV off on 50 mV rails)."""
    import copy

    net = layered([16, 12, 10, 8], diode="ideal", rails=(-0.05, 0.05), gain=3.0, seed=5)
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (8, 8))
    learned = copy.deepcopy(net)
    for w in learned.weights:
        w *= rng.uniform(0.5, 1.0, w.shape)
    ref = solve(learned, x, tol=1e-13).layers
    errors = {}
    for leak in ("reciprocal", "measured"):
        prog = build_program(net, 1.0, alpha=0.5, threshold=1e-4, leak=leak)
        for d in prog.dense:
            if d.role == "partner":
                continue
            c = d.dst if d.role == "forward" else d.src
            d.conductance = (learned.gains[c] * learned.weights[c]).T if d.role == "forward" \
                else learned.weights[c] / learned.gains[c]
            d.mantissa = np.clip(np.rint(d.conductance / d.scale), 0, 255).astype(np.int64)
        prog.net = learned
        src = learned.encode_inputs(x)
        r = emulate(prog, prog.sources_int(src), None, steps=400)
        assert (r["last_spike"][0] < 400).all()
        err = np.max(np.hstack([np.abs(prog.volts(s[0]) - v) for s, v in zip(r["states"], ref)]), axis=1)
        errors[leak] = err
        if leak == "measured":
            assert (err <= error_bound(prog, src, ref, 0.0, r["active_steps"])).all()
    assert errors["measured"].max() < 3e-3 < 1e-2 < errors["reciprocal"].max(), errors


def test_a_saturated_state_fails_the_width_check():
    """A linear 32-24-16-8 network at gain 32 drives its targets past the 24-bit state: the microcode saturates
    them, and the width check, which records every target before the saturation, names them."""
    net = layered([32, 24, 16, 8], diode=None, gain=32.0, seed=1)
    x = np.random.default_rng(1).uniform(0, 1, (4, 16))
    prog = build_program(net, 1.0, alpha=0.5, threshold=1e-4)
    r = emulate(prog, prog.sources_int(net.encode_inputs(x)), None, steps=200, peaks=True)
    assert r["peaks"]["target"] > microcode.STATE_MAX and r["peaks"]["v"] >= microcode.STATE_MAX - 1  # pinned
    with pytest.raises(OverflowError, match="target needed"):
        check_widths(r["peaks"])


def test_each_mapped_quantity_outside_the_documented_ranges_is_named():
    """Weight mantissas and exponents, the leak and every per-neuron constant against loihi.map.RANGES: an
    in-range program passes; each planted out-of-range value is named in one line."""
    from eqprop.neuromorphic.loihi.map import RANGES, range_violations

    net, x, y = case()
    prog = build_program(net, 1.0, alpha=0.5, threshold=1e-4, betas=(0.0, 2e-7))
    assert range_violations(prog, a_in_peak=1000) == []  # as mapped: every exponent fitted (payload shifts)
    assert all(source for _, _, source in RANGES.values())
    plants = [("weight exponent", lambda p: setattr(p.dense[1], "weight_exp", -9)),
              ("weight exponent", lambda p: setattr(p.dense[0], "weight_exp", 8)),
              ("weight mantissa", lambda p: p.dense[2].mantissa.__setitem__((0, 0), 256)),
              ("leak dv", lambda p: setattr(p.layers[0], "dv", 4097)),
              ("neuron constant", lambda p: p.layers[1].r.__setitem__(0, 2**23)),
              ("neuron constant", lambda p: p.layers[0].bias.__setitem__(0, -(2**23))),
              ("neuron constant", lambda p: p.layers[-1].per_phase[1][0].__setitem__(0, 2**24))]
    for kind, plant in plants:
        bad = build_program(net, 1.0, alpha=0.5, threshold=1e-4, betas=(0.0, 2e-7))
        plant(bad)
        found = range_violations(bad)
        assert len(found) == 1 and kind in found[0], (kind, found)
    assert "Dense output" in range_violations(prog, a_in_peak=2**15)[0]
    # a measured leak's constants too (a strong nudge once overflowed beta_g; g's scale now leaves room for it)
    for beta in (2e-7, 30 * float(net.weights[-1].sum(0).mean())):
        meas = build_program(net, 1.0, alpha=0.5, threshold=1e-4, betas=(0.0, beta), leak="measured")
        assert range_violations(meas) == []
    meas.layers[-1].beta_g = (0, 2**24)
    meas.layers[0].k = 2**23
    found = range_violations(meas)
    assert len(found) == 2 and "layer 1 k" in found[0] and "beta_g" in found[1], found


def test_payload_shifts_bring_every_exponent_into_range_and_keep_the_weights():
    """The default digits network maps to exponents of -12 to -14 without payload shifts: every one of these
    networks now maps inside RANGES (graded: some sender shifted; binary: the partner's mantissa scaled), each
    Dense's mapped conductances are unchanged by the fitting (mantissa x scale), and each exponent is the
    units' own: 2^exp = 2^q 2^frac_dst 2^shift_src / 2^vf (binary: x the quantum instead of the shift)."""
    from eqprop.neuromorphic.loihi.map import RANGES, range_violations

    lo, hi, _ = RANGES["weight exponent"]
    nets = [layered([128, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0),
            layered([64, 32, 24, 20], diode="ideal", rails=(-0.05, 0.05), gain=3.0, seed=1), case()[0]]
    shifted = 0
    for net in nets:
        for threshold, binary in ((0.0, False), (1e-4, False), (1e-3, True)):
            prog = build_program(net, 1.0, alpha=0.5, threshold=threshold, binary=binary, betas=(0.0, 2e-7))
            assert range_violations(prog) == [], (net.sizes, threshold, binary)
            shifts = {"input": prog.input_shift, **{c: p.shift for c, p in enumerate(prog.layers)}}
            shifted += sum(shifts.values())
            for d in prog.dense:
                assert lo <= d.weight_exp <= hi and 0 <= d.mantissa.min() and d.mantissa.max() <= 255
                if d.role == "partner":
                    assert np.all(d.mantissa * 2.0 ** d.weight_exp
                                  == d.conductance * 2.0 ** (shifts[d.src] + (np.log2(prog.theta) if binary else 0)))
                    continue
                np.testing.assert_allclose(d.mantissa * d.scale, d.conductance, rtol=1 / 128 + 1e-12,
                                           atol=0.5 * d.scale)
                unit = prog.current_frac[d.dst] - prog.vf + (np.log2(prog.theta) if binary else shifts[d.src])
                assert d.weight_exp == np.log2(d.scale) + unit
                if binary:
                    assert shifts[d.src] == 0
    assert shifted > 0  # the graded mappings needed shifts: the fitting was exercised


def test_a_mapping_that_cannot_fit_is_refused_before_any_run():
    """A sender whose connections need exponents more than the range (plus the mantissas' headroom) apart cannot
    be fitted by one payload shift: build_program refuses it in one line naming the quantity."""
    net = layered([16, 12, 10, 8], diode="ideal", rails=(-0.05, 0.05), gain=3.0, seed=2)
    net.weights[1] *= 2.0 ** -30  # hidden 1 -> hidden 2 almost open: layer 2's backward Dense needs a far lower exponent
    with pytest.raises(NetworkError, match=r"does not fit Loihi 2 as mapped: .*weight exponent") as err:
        build_program(net, 1.0, alpha=0.5, threshold=1e-4)
    assert "\n" not in str(err.value)


def test_shifted_payloads_round_to_their_unit_and_a_silent_sender_stays_within_its_quantum():
    rng = np.random.default_rng(4)
    x = rng.integers(-2**22, 2**22, (200, 50))
    sent0 = x + rng.integers(-5000, 5000, x.shape)
    for shift in (0, 1, 4, 6):
        for theta in (0, 3, 100):
            out, sent = microcode.encode(x, sent0, theta, False, shift)
            assert np.array_equal(sent, sent0 + (out << shift))
            moved = out != 0
            assert np.all(np.abs(x - sent)[moved] <= (1 << shift) // 2)
            assert np.all(np.abs(x - sent0)[~moved] < max(theta, 1 << shift))
            if shift == 0:
                ref = np.where(np.abs(x - sent0) >= max(theta, 1), x - sent0, 0)
                assert np.array_equal(out, ref)


def test_rails_round_inward_and_shockley_is_refused_with_the_reason():
    net, x, y = case()
    prog = build_program(net, 1.0)
    for layer, clamp in zip(prog.layers, net.neurons):
        if clamp is not None:
            assert clamp.v_low <= layer.low * prog.lsb and layer.high * prog.lsb <= clamp.v_high
    shockley = layered([8, 6, 4], diode="shockley", rails=(-0.05, 0.05), seed=0)
    with pytest.raises(NetworkError, match="exp.*--diode ideal or --diode pwl"):
        build_program(shockley, 1.0)
    assert PiecewiseLinearDiode().integer_terms(net.neurons[0]) is not None


def test_loihi_backend_settles_checks_lava_and_counts_activity():
    from eqprop.backends.loihi import LoihiBackend
    from eqprop.learning import cosine, eqprop_gradient, resistive_exact_gradient, run_phases

    net, x, y = case(batch=8)
    backend = LoihiBackend(net, threshold=1e-4, steps=64, verify=2)
    eq = backend.settle(x)
    assert eq.info["lava_verified"] == 2  # the first settle ran 2 samples through Lava: bit-exact
    assert eq.info["spikes_per_inference"] > 0 and eq.info["synops_per_inference"] > eq.info["spikes_per_inference"]
    assert eq.info["not_silent"] == 0.0 and eq.info["loihi"]["energy_nj"] > 0
    ref = solve(net, x, tol=1e-13)
    assert np.abs(eq.voltages - ref.voltages).max() < 5e-3
    # host-side EqProp through the integer equilibria still points along the exact gradient
    grad = eqprop_gradient(backend, run_phases(backend, x, y, 0.1 * float(backend.beta_unit()), "centered"))
    exact, _ = resistive_exact_gradient(net, ref, y)
    assert cosine(grad, exact) >= 0.99  # measured 0.9997 at the training default beta = 0.1


def test_a_loihi_run_too_short_to_settle_is_said_so_not_counted_as_within_its_bound():
    """--time-steps 1: no sample falls silent, so the error bound (which holds at silence) covers none of them;
    the report says "0 of 50 silent" and warns, where it used to say "0 over" and "silent after 1.0 steps"."""
    from eqprop.experiments.loihi import loihi_rows
    from eqprop.learning.data import load

    net = layered([128, 16, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    ds = load("digits", n_test=40)
    lines = []
    rows, _ = loihi_rows(net, ds.x_test, ds.y_test, [1e-4], steps=1, bound_samples=20, log=lines.append)
    assert rows[0]["not_silent"] == 1.0 and rows[0]["bound_silent_samples"] == 0
    assert rows[0]["silent_after_steps_mean"] is None and rows[0]["bound_failures"] == 20
    assert "20 of 20 failed" in lines[0] and "not silent: 20" in lines[0] and "none fell silent" in lines[0]
    assert any(line.startswith("warning: 40 of the 40 samples (100.0%) were still spiking after 1 steps")
               for line in lines)
    rows, _ = loihi_rows(net, ds.x_test, ds.y_test, [1e-4], steps=64, bound_samples=20, log=lambda *_: None)
    assert rows[0]["bound_silent_samples"] > 0 and rows[0]["silent_after_steps_mean"] < 64
    assert rows[0]["bound_failures"] == 20 - rows[0]["bound_silent_samples"]
    assert 1 <= rows[0]["bound_tightness_median"] <= rows[0]["bound_tightness_worst"]
    # some fell silent, some did not: the mean step is said to be of those that did, and the warning counts the rest
    lines = []
    rows, _ = loihi_rows(net, ds.x_test, ds.y_test, [1e-4], steps=20, bound_samples=20, log=lines.append)
    spiking = round(rows[0]["not_silent"] * 40)
    assert 0 < spiking < 40, spiking
    assert f", {40 - spiking} of 40 fell silent, after " in lines[0]
    assert any(line.startswith(f"warning: {spiking} of the 40 samples ({spiking / 40:.1%}) were still spiking")
               for line in lines)


def test_the_report_with_a_measured_leak_counts_its_calibration_steps_and_keeps_its_bound():
    """``eqprop loihi --leak measured``: the same accuracy as the reciprocal on a digits subset, every silent
    silent sample within its bound (none that fell silent failed), two more time steps per inference (the
    calibration steps)."""
    from eqprop.experiments.loihi import loihi_rows
    from eqprop.learning.data import load

    net = layered([128, 16, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    ds = load("digits", n_test=40)
    rows = {leak: loihi_rows(net, ds.x_test, ds.y_test, [1e-4], steps=64, bound_samples=20, log=lambda *_: None,
                             leak=leak)[0][0] for leak in ("reciprocal", "measured")}
    rec, mea = rows["reciprocal"], rows["measured"]
    assert mea["leak"] == "measured" and mea["time_steps"] == rec["time_steps"] + 2
    assert abs(mea["accuracy"] - rec["accuracy"]) <= 0.05
    assert mea["bound_silent_samples"] > 0 and mea["bound_failures"] == 20 - mea["bound_silent_samples"]


def test_energy_estimate_is_a_range_from_the_published_figures_and_names_what_it_leaves_out():
    """Counts priced by Davies et al. 2018 Table 2, by hand: 1000 synaptic ops, 100 neuron updates, 50 messages and
    400 synapse updates; the range spans the inactive and active neuron update and a tile hop per message; time
    from all on one core down to an even share of 4 cores; static power and barriers only when given."""
    from eqprop.neuromorphic.loihi.energy import estimate, per_inference

    r = estimate(50, 1000, 100, 400, steps=10, cores=4)
    lo = 1000 * 23.6 + 100 * 52 + 50 * 1.7 + 400 * 120  # pJ
    hi = 1000 * 23.6 + 100 * 81 + 50 * (1.7 + 4.0) + 400 * 120
    assert r["energy_nj"] == pytest.approx((lo * 1e-3, hi * 1e-3))
    serial = (1000 * 3.5 + 100 * 8.4) * 1e-3
    assert r["time_us"] == pytest.approx((serial / 4, serial))
    assert "static power" in r["excluded"] and "barrier" in r["excluded"] and "host I/O" in r["excluded"]
    s = estimate(50, 1000, 100, 400, steps=10, cores=4, static_w=0.1, barrier_s=1e-6)
    assert s["time_us"] == pytest.approx((serial / 4 + 10, serial + 10))
    assert s["energy_nj"][0] == pytest.approx(lo * 1e-3 + 0.1 * (serial / 4 + 10) * 1e3)
    assert s["excluded"].startswith("host I/O")
    p = per_inference(50, 1000, 100)
    assert p["energy_nj"] == pytest.approx((1000 * 23.6 + 100 * 52 + 50 * 1.7) * 1e-3) and p["energy_nj_max"] > p["energy_nj"]
