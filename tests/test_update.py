"""The training step's update: the compiled one-pass path against the numpy path, and the phases'
unchanged-parameters block (one validation, derived arrays reused, nothing stale after it)."""
import pickle

import numpy as np
import pytest

from eqprop.circuits import layered, solve
from eqprop.circuits.errors import InputError, NetworkError
from eqprop.learning import NativeBackend, run_phases
from eqprop.learning import update
from eqprop.learning.programming import preset

pytestmark = pytest.mark.skipif(update.njit is None, reason="numba not installed")


def _arrays(seed, shape=(300, 257)):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1e-6, shape)
    return p, rng.normal(0.0, 1e-3, shape), rng.normal(0.0, 1e-3, shape)


@pytest.mark.parametrize("device", [None, "ideal", "bounded"])
def test_fused_update_equals_the_numpy_path(device, monkeypatch):
    """Momentum, scaling, step and the device's clipping in one compiled pass give the numpy path's result
    (bounded: g_max inside the range, so the upper clip acts; ideal: the lower one acts)."""
    model = None if device is None else preset(device, 6e-7)
    results = []
    for kernels in ("", "numpy"):
        monkeypatch.setenv("EQPROP_KERNELS", kernels)
        p, g, v = _arrays(0)
        for s in range(3):
            g2 = g * (s + 1)
            update.sgd_step(p, g2, v, 0.9, 0.7, 3e-4, model, np.random.default_rng(0))
        results.append((p, v))
    (p1, v1), (p0, v0) = results
    np.testing.assert_allclose(v1, v0, rtol=1e-14, atol=0)
    np.testing.assert_allclose(p1, p0, rtol=1e-13, atol=1e-22)
    if model is not None:
        assert p1.min() >= model.g_min and p1.max() <= model.g_max
        assert (p1 == model.g_min).any() or (p1 == model.g_max).any()  # the clip was exercised


def test_device_models_with_more_than_bounds_take_the_device_path(monkeypatch):
    """A device with levels (quantized) must not be reduced to a clip: the result lies on its levels."""
    model = preset("quantized", 1e-6)
    p, g, v = _arrays(1)
    update.sgd_step(p, g, v, 0.9, 1.0, 1e-4, model, np.random.default_rng(0))
    step = (model.g_max - model.g_min) / (model.levels - 1)
    np.testing.assert_allclose(p / step, np.round(p / step), atol=1e-9)


def test_unchanged_block_validates_once_and_solves_the_same():
    net = layered([1568 // 8, 40, 30, 20], seed=4, gain=3.0, rails=(-0.05, 0.05), hidden_pairs=True)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (7, 98)), rng.uniform(-0.05, 0.05, (7, 10))
    outside = [solve(net, x), solve(net, x, y, 1e-7)]
    with net.unchanged():
        inside = [solve(net, x), solve(net, x, y, 1e-7)]
        assert set(net._fixed) >= {"totals", "source_weights", "amplifier_matrices"}  # derived once, reused
        with net.unchanged():  # nested: shares the outer block
            assert "source_weights" in net._fixed
        assert net.copy()._fixed is None
        assert pickle.loads(pickle.dumps(net))._fixed is None  # a worker's copy is not inside the block
    assert net._fixed is None
    for a, b in zip(outside, inside):
        np.testing.assert_array_equal(a.voltages, b.voltages)


def test_the_signed_input_weights_follow_the_conductances_from_solve_to_solve():
    """The check forms G+ - G- into an array the network keeps: a bare solve after an in-place edit, or after a
    block, uses the edited conductances (each solve equals the same solve of a fresh copy, bit for bit); a copy or
    a pickle carries no such array; a negative nudge's limit reads the checked totals."""
    net = layered([16, 10, 6], seed=2, rails=(-0.05, 0.05))
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 1, (4, 8)), rng.uniform(-0.05, 0.05, (4, 3))
    for edit in range(4):
        got = solve(net, x, y, -1e-7)
        want = solve(pickle.loads(pickle.dumps(net)), x, y, -1e-7)
        assert got.voltages.tobytes() == want.voltages.tobytes()
        with net.unchanged():
            assert net._fixed["source_weights"] is net._scratch["signed"]
            np.testing.assert_array_equal(net._fixed["source_weights"], net.weights[0][:8] - net.weights[0][8:])
            assert solve(net, x).voltages.tobytes() == solve(net.copy(), x).voltages.tobytes()
        net.weights[0][edit, edit] *= 3.0  # in place, between solves
        assert net.copy()._scratch is None and pickle.loads(pickle.dumps(net))._scratch is None
    S = net.node_totals()[-1]
    limit = float(np.min(S[:3] * S[3:] / (S[:3] + S[3:])))
    with pytest.raises(InputError, match="too negative"):
        solve(net, x, y, -1.01 * limit)
    with net.unchanged():  # inside a block too, each phase is held to it
        solve(net, x, y, -0.5 * limit)
        with pytest.raises(InputError, match="too negative"):
            solve(net, x, y, -1.01 * limit)


def test_the_kept_source_drive_follows_x_by_value():
    """The phases reuse the free phase's input product; an x edited in place inside the block must not."""
    net = layered([16, 10, 6], seed=2, rails=(-0.05, 0.05))
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (4, 8))
    with net.unchanged():
        first = solve(net, x)
        kept = net._fixed["source_drive"][1]
        assert solve(net, x).voltages.tobytes() == first.voltages.tobytes()
        assert net._fixed["source_drive"][1] is kept  # a hit
        x[2, 5] += 0.5
        edited = solve(net, x)
        assert net._fixed["source_drive"][1] is not kept
    np.testing.assert_array_equal(edited.voltages, solve(net, x).voltages)
    assert not np.allclose(edited.voltages[2], first.voltages[2])


def test_the_kept_source_drive_alternates_batches_without_going_stale():
    """A new batch of the same shape goes into the kept copy's buffer: going back to an earlier batch, or to the
    new one edited in place by one ulp, recomputes; every solve in the block equals the same solve outside it."""
    net = layered([16, 10, 6], seed=2, rails=(-0.05, 0.05))
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, (5, 8)), rng.uniform(0, 1, (5, 8))
    expected = {k: solve(net, v).voltages for k, v in (("a", a), ("b", b))}
    with net.unchanged():
        for k, v in (("a", a), ("b", b), ("a", a), ("a", a), ("b", b)):
            np.testing.assert_array_equal(solve(net, v).voltages, expected[k])
        b[4, 7] = np.nextafter(b[4, 7], 2.0)  # one ulp: the kept copy is refreshed
        solve(net, b)
        assert net._fixed["source_drive"][0][4, 7] == b[4, 7]
        b[4, 7] += 0.25
        edited = solve(net, b).voltages
        assert not np.array_equal(edited, expected["b"])
        np.testing.assert_array_equal(solve(net, a[:3]).voltages, expected["a"][:3])  # another shape
    np.testing.assert_array_equal(edited, solve(net, b).voltages)


def test_a_fault_left_by_an_update_is_reported_by_the_next_phases():
    """The native backend's sync no longer validates: the next step's block must still catch the fault."""
    net = layered([16, 10, 6], seed=2, rails=(-0.05, 0.05))
    backend = NativeBackend(net)
    x, y = np.ones((2, 8)), np.zeros((2, 3))
    run_phases(backend, x, y, 1e-7)
    net.weights[0][3, 4] = np.nan
    backend.sync()
    with pytest.raises(NetworkError, match="NaN"):
        run_phases(backend, x, y, 1e-7)
    net.weights[0][3, 4] = 1e-7
    with backend.unchanged():  # after the block a solve sees an edit made in between
        backend.settle(x)
    net.weights[0][:, 4] = 0.0
    net.biases[0][:, 4] = 0.0
    net.weights[1][4, :] = 0.0
    with pytest.raises(NetworkError, match="floating"):
        backend.settle(x)


def test_warmup_ramps_every_rate_linearly_then_holds():
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig
    from eqprop.learning.runs import build_network, resolved

    rng = np.random.default_rng(0)
    x, labels = rng.uniform(0, 1, (8, 64)), rng.integers(0, 10, 8)
    deltas = []
    for warmup_steps in (0, 4):
        cfg = resolved(TrainConfig(hidden=[12], momentum=0.0, lr_decay=0.5))
        net = build_network(cfg, 64, 10)
        before = [w.copy() for w in net.weights]
        trainer = EqPropTrainer(NativeBackend(net), cfg, None, 10)
        trainer.warmup_steps = warmup_steps
        trainer.step(x, labels)
        deltas.append([w - b for w, b in zip(net.weights, before)])
        if warmup_steps:
            assert trainer.rate_factor() == pytest.approx(2 / 4)
            trainer.steps, trainer.epoch = 10, 1
            assert trainer.rate_factor() == pytest.approx(0.5)  # ramp done: the decay alone
    for full, ramped in zip(*deltas):
        np.testing.assert_allclose(ramped, full / 4, rtol=1e-9, atol=1e-30)


@pytest.mark.parametrize("kernels", ["", "numpy"])
def test_velocities_never_become_subnormal(kernels, monkeypatch):
    """A velocity whose gradient stays zero decays by the momentum each step; it must reach zero before the
    subnormal floats (arithmetic on them is ~100x slower), on both paths."""
    monkeypatch.setenv("EQPROP_KERNELS", kernels)
    p, g, v = _arrays(2)
    v[:] = 1e-290
    for _ in range(400):  # 0.9^400 * 1e-290 would be 5e-309: subnormal
        update.sgd_step(p, np.zeros_like(g), v, 0.9, 1.0, 1e-3, None)
    tiny = np.finfo(float).tiny
    assert not ((v != 0) & (np.abs(v) < tiny)).any()
    assert (v == 0).all()


def test_a_graph_block_checks_and_compiles_once_and_solves_the_same(monkeypatch):
    """GraphNetwork.unchanged(): one check on entry and one compile for every solve in it, the same volts as bare
    solves; a copy is outside the block, and after it a solve sees an edit again."""
    import copy

    import eqprop.circuits.solver as solver_module
    from eqprop.circuits.network import GraphNetwork

    graph = layered([8, 6, 4], seed=5, rails=(-0.05, 0.05)).to_graph()
    x, y = np.random.default_rng(6).uniform(-1, 1, (3, 4)), np.zeros((3, 2))
    bare = [solve(graph, x), solve(graph, x, y, 1e-6)]
    calls = {"validate": 0, "compile": 0}
    check, build = GraphNetwork._check_energy_exists, solver_module.compile_graph

    def counted_check(self):
        calls["validate"] += 1
        return check(self)

    def counted_build(net):
        calls["compile"] += 1
        return build(net)

    monkeypatch.setattr(GraphNetwork, "_check_energy_exists", counted_check)
    monkeypatch.setattr(solver_module, "compile_graph", counted_build)
    with graph.unchanged():
        inside = [solve(graph, x), solve(graph, x, y, 1e-6), solve(graph, x, y, -1e-6)]
        assert copy.deepcopy(graph)._fixed is None and pickle.loads(pickle.dumps(graph))._fixed is None
    assert calls == {"validate": 1, "compile": 1}
    for a, b in zip(bare, inside):
        np.testing.assert_array_equal(a.voltages, b.voltages)
    u, v = next(iter(graph.graph.edges()))
    graph.graph.edges[u, v]["g"] = -1.0
    with pytest.raises(NetworkError, match="conductance"):
        solve(graph, x)


def test_an_unchecked_graph_is_checked_by_its_first_solve_or_block():
    """GraphNetwork(validate=False) and to_graph(validate=False) defer the check, they do not skip it."""
    from eqprop.circuits.network import GraphNetwork

    net = layered([8, 6, 4], seed=5)
    g = net.to_graph(validate=False).graph
    g.add_node("island", role="hidden")
    g.add_node("island2", role="hidden")
    g.add_edge("island", "island2", g=1e-6)
    graph = GraphNetwork(g, n_features=4, validate=False)
    x = np.ones((1, 4))
    with pytest.raises(NetworkError, match="no resistive path"):
        solve(graph, x)
    with pytest.raises(NetworkError, match="no resistive path"):
        with graph.unchanged():
            pass
    laid = net.to_graph(validate=False)
    next(iter(laid.graph.edges(data=True)))[2]["g"] = np.nan
    with pytest.raises(NetworkError, match="conductance"):
        solve(laid, x)


@pytest.mark.parametrize("device,weight_decay", [("ideal", 0.0), ("ideal", 1e-3), ("bounded", 1e-3), ("quantized", 0.0)])
def test_the_input_pairs_update_from_paired_rows_is_the_full_one_bit_for_bit(monkeypatch, device, weight_decay):
    """A training step updates an input connection of +x/-x pairs from its statistics as ``PairedRows`` (the - rows
    formed by the update as it reads them, ``sgd_step_pairs``): after a few steps the conductances and velocities
    are those of the full statistics array through ``decay_weights`` and ``sgd_step``, bit for bit, with and
    without weight decay; a device model that applies the step itself (levels) gets the full array."""
    from eqprop.circuits.energy import PairedRows
    from eqprop.learning import eqprop as eqprop_module
    from eqprop.learning import trainer as trainer_module
    from eqprop.learning.runs import build_network, resolved
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig

    rng = np.random.default_rng(3)
    x, labels = rng.uniform(0, 1, (24, 30)), rng.integers(0, 4, 24)
    seen, results = [], []
    for paired in (True, False):
        full = eqprop_module.eqprop_statistics

        def statistics(backend, phases, paired=False, _use=paired):
            stats, scale = full(backend, phases, paired=_use)
            seen.append(any(isinstance(s, PairedRows) for s in stats))
            return stats, scale

        monkeypatch.setattr(trainer_module, "eqprop_statistics", statistics)
        cfg = resolved(TrainConfig(hidden=[9], weight_decay=weight_decay, batch_size=24))
        net = build_network(cfg, 30, 4)
        g_max = 2.0 * max(float(w.max()) for w in net.weights)
        trainer = EqPropTrainer(NativeBackend(net), cfg, preset(device, g_max), 4)
        for _ in range(4):
            trainer.step(x, labels)
        results.append(([w.tobytes() for w in net.weights + net.biases], [v.tobytes() for v in trainer.velocity]))
    assert seen == [True] * 4 + [False] * 4
    assert results[0] == results[1]
