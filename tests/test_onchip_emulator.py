"""The host emulator of the one-chip run (``neuromorphic.onchip.emulator``, ``--backend lava-chip-emu``) against
Lava: its learning engine step by step against Lava's own ``PyLearningDenseModelBitApproximate`` on adversarial
inputs, and a whole run against the Lava run, bit for bit. Each check runs in a child process (importing Lava's
runtime fixes this process's multiprocessing start method)."""
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _child(name: str, *args) -> str:
    code = f"import sys; sys.path.insert(0, {HERE!r}); import test_onchip_emulator as t; t.{name}(*sys.argv[1:])"
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def engine_step_by_step(steps: str = "300") -> None:
    """Lava's bit-approximate LearningDense model and ``BitApproxSynapses`` side by side, each step fed the same
    payloads (phase payloads of up to 24 bits, negative and zero ones, epilogue payloads around 2 (64 + X)), third
    factors (quiet steps, and codes beyond the 7 bits that saturate), and back-propagating spikes, for rules of
    several scales and tag bits: currents, weights and tags after every step."""
    from lava.magma.core.learning.constants import GradedSpikeCfg
    from lava.proc.dense.process import LearningDense
    from lava.utils.weightutils import SignMode

    from eqprop.neuromorphic.onchip.emulator import BitApproxSynapses, _model, _Out
    from eqprop.neuromorphic.onchip.network import _int_rule
    from eqprop.neuromorphic.simulation.proc.dense.models import seeded_rounding_model

    rng = np.random.default_rng(0)
    n_post, n_pre = 5, 7
    seen = {"tag_min": 0, "tag_max": 0, "w_max": 0, "w_zero": 0}
    for e, s, exp in ((8, 0, -3), (-3, 7, 2), (2, 3, 0), (-7, 0, -9)):
        rule = _int_rule(e, s, seed=11)
        w0 = rng.integers(0, 256, (n_post, n_pre))
        proc = LearningDense(weights=w0, num_message_bits=24, graded_spike_cfg=GradedSpikeCfg.OVERWRITE,
                             sign_mode=SignMode.EXCITATORY, learning_rule=rule, weight_exp=exp, num_weight_bits=8)
        lava = _model(seeded_rounding_model(), proc)
        outs = {k: _Out(d) for k, d in (("s_in", np.int64), ("s_in_bap", bool), ("s_in_y1", np.int32),
                                         ("s_in_y2", np.int32), ("s_in_y3", np.int32))}
        for k, o in outs.items():
            getattr(lava, k).senders.append(o)
        lava.a_out = _Out(np.int32)
        emu = BitApproxSynapses(w0, exp, rule)
        for t in range(1, int(steps) + 1):
            quiet = rng.random() < 0.5
            if rng.random() < 0.3:
                s_in = rng.integers(-(2**23), 2**23, n_pre)
            else:
                s_in = 2 * (64 + rng.integers(-70, 70, n_pre))
            s_in[rng.random(n_pre) < 0.2] = 0
            y = [np.zeros(n_post, np.int32) if quiet else rng.integers(-80, 80, n_post).astype(np.int32)
                 for _ in range(3)]
            bap = rng.random(n_post) < (0.05 if quiet else 0.3)
            for k, v in zip(outs, (s_in, bap, *y)):
                outs[k].send(v)
            lava.time_step = t
            sent = emu.send()
            with np.errstate(invalid="ignore"):
                lava.run_spk()
                if lava.lrn_guard():
                    lava.run_lrn()
                emu.receive(s_in, bap, *y)
                emu.learn(t)
            assert np.array_equal(lava.a_out.data, sent), (e, s, t, "currents")
            assert np.array_equal(np.asarray(lava.weights), emu.weights), (e, s, t, "weights")
            assert np.array_equal(np.asarray(lava.tag_1), emu.tag_1), (e, s, t, "tags")
            seen["tag_min"] = min(seen["tag_min"], int(emu.tag_1.min()))
            seen["tag_max"] = max(seen["tag_max"], int(emu.tag_1.max()))
            seen["w_max"] = max(seen["w_max"], int(emu.weights.max()))
            seen["w_zero"] += int(np.count_nonzero(emu.weights == 0))
    # the inputs reached every saturation: tags at both ends, weights at 0 and 255
    assert seen["tag_min"] <= -256 and seen["tag_max"] == 255 and seen["w_max"] == 255 and seen["w_zero"] > 0, seen
    # and what it does not emulate it refuses in one line
    decaying = _int_rule(0, 0)
    decaying.y1_tau = 65535
    try:
        BitApproxSynapses(w0, 0, decaying)
    except ValueError as err:
        assert "never decay" in str(err)
    else:
        raise AssertionError("a decaying trace was accepted")
    print("ok")


def test_engine_arithmetic_is_lavas_step_by_step():
    assert _child("engine_step_by_step").split()[-1] == "ok"


def whole_run(hold: str = "0") -> None:
    """One run of 9 samples in batches of 3 (three apply steps) at a rate that moves weights, integer neurons, 12
    steps a phase, on Lava and on the emulator: every mantissa of every copy, the free-phase outputs and (hold)
    the tags."""
    from eqprop.backends.lava_onchip_int import program_network
    from eqprop.backends.native import NativeBackend
    from eqprop.circuits import layered
    from eqprop.learning import eqprop_gradient, run_phases
    from eqprop.neuromorphic import LavaSession
    from eqprop.neuromorphic.onchip.network import OnchipTraining

    net = layered([12, 8, 6, 4], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=1)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (9, 6)), rng.uniform(-0.05, 0.05, (9, 2))
    beta = 0.1 * NativeBackend(net).beta_unit()
    m = program_network(net, x[:6], y[:6], beta)
    nb = NativeBackend(net.copy(), tol=1e-13)
    g = eqprop_gradient(nb, run_phases(nb, x[:6], y[:6], beta, "centered"))
    per = 0.3 * max(float(w.max()) for w in net.weights) / (6 * max(float(np.abs(t).max()) for t in g))
    args = (net.encode_inputs(x), y, beta, [per] * 6, 3, 12)
    kw = dict(int_map=m, seed=3, hold=hold == "1", neurons="integer")
    with LavaSession(timeout=600) as session:
        lava = session.onchip_train(net, *args, **kw)
    emu = OnchipTraining(net.copy(), *args, **kw).emulate()
    start = m.mantissas(net)
    moved = 0
    for key in ("forward", "backward", "bias"):
        for a, b, s in zip(lava["mantissas"][key], emu["mantissas"][key], start[key]):
            assert np.array_equal(a, b), key
            moved += int(np.count_nonzero(a != s[0]))
    assert np.array_equal(lava["free_out"], emu["free_out"])
    # what a chip would do, counted: the learning engine visits every synapse every step, every free neuron
    # updates every step, and nearly every payload is non-zero (graded voltages), each reaching its whole array
    a = emu["activity"]
    sizes = [(8, 12), (6, 8), (4, 6), (6, 8), (4, 6), (8, 2), (6, 2), (4, 2)]  # forward, backward, bias arrays
    per_step = sum(p * q for p, q in sizes)
    assert a["steps"] == 9 * (3 + 3 * 12 + 8 + 1) and a["synapse_updates"] == a["steps"] * per_step
    assert a["neuron_updates"] == a["steps"] * (8 + 6 + 4)
    assert 0.9 * a["steps"] * per_step < a["synops"] <= a["steps"] * per_step
    assert a["inference"]["steps"] == 9 * 15 and a["inference"]["synops"] < a["synops"] / 3
    if hold == "1":
        assert moved == 0
        for key in ("forward", "backward"):
            for a, b in zip(lava["held_tags"][key], emu["held_tags"][key]):
                assert np.array_equal(a, b) and np.abs(a).max() > 0, key
    else:
        assert moved > 100, moved  # measured 139 of 312 forward, backward and bias mantissas
    print("ok")


def test_emulated_run_is_the_lava_run_bit_for_bit():
    assert _child("whole_run", 0).split()[-1] == "ok"


@pytest.mark.slow  # the run above covers the weights; this one the tags a hold run keeps
def test_emulated_hold_run_keeps_the_lava_runs_tags():
    assert _child("whole_run", 1).split()[-1] == "ok"


def resume_across_epochs(tmp: str) -> None:
    """A lava-chip-emu run stopped after its first epoch and resumed ends with the conductances and backward copies
    of a run that was never stopped (the mapping, the copies and the batch count travel in the checkpoint)."""
    from pathlib import Path

    from eqprop.learning.rundir import load_checkpoint
    from eqprop.learning.runs import train
    from eqprop.learning.trainer import TrainConfig

    tmp = Path(tmp)
    cfg = TrainConfig(backend="lava-chip-emu", dataset="digits", hidden=[8], epochs=2, n_train=8, n_test=8,
                      batch_size=4, seed=0)
    quiet = dict(progress=False, log=lambda *_: None)
    train(cfg, tmp / "full", **quiet)
    assert train(cfg, tmp / "cut", stop_after_steps=1, **quiet) == {"stopped": True}  # at the first epoch's end
    _, first, _ = load_checkpoint(tmp / "cut")
    assert first["epoch"] == 1
    train(cfg, tmp / "cut", resume=True, **quiet)
    full, state, _ = load_checkpoint(tmp / "full")
    cut, cut_state, _ = load_checkpoint(tmp / "cut")
    for a, b in zip(full.weights + full.biases, cut.weights + cut.biases):
        np.testing.assert_array_equal(a, b)
    assert state["backend_state"]["backward"] == cut_state["backend_state"]["backward"]
    assert state["backend_state"]["batches"] == 4 == cut_state["backend_state"]["batches"]
    assert first["backend_state"]["backward"] != state["backend_state"]["backward"]  # the second epoch moved them
    print("ok")


def test_an_emulated_run_resumes_as_an_uninterrupted_run(tmp_path):
    assert _child("resume_across_epochs", tmp_path).split()[-1] == "ok"
