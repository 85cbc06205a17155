"""Hidden nodes grounded per sample (``LayeredNetwork.grounded``: dropout made of reset switches), checked against a
second method: the graph solver on the same circuit with each grounded node turned into a 0 V source, sample by
sample; and the trainer's ``--dropout``, whose EqProp update is then the grounded sub-circuit's."""
import numpy as np
import pytest

from eqprop.circuits import InputError, NetworkError, PiecewiseLinearDiode, ShockleyDiode, layered, solve
from eqprop.circuits import solve_layered


def _as_sources(net, i, masks):
    """Sample i's circuit as a graph, its grounded nodes 0 V sources."""
    g = net.to_graph()
    held = np.concatenate([m[i] if m is not None else np.ones(n) for m, n in zip(masks, net.sizes[1:-1])])
    for name, free in zip(net.free_node_names(), held):
        if not free:
            attrs = g.graph.nodes[name]
            attrs.clear()
            attrs.update(role="bias", voltage=0.0)
    g.validate()
    return g


CASES = [
    ([16, 12, 6], "ideal", {}, 6, True),
    ([16, 10, 9, 6], "ideal", {}, 6, True),
    ([16, 10, 9, 6], "ideal", {}, 6, False),  # the per-layer loop (grounded_box_update per layer)
    ([16, 10, 9, 6], "ideal", {"hidden_pairs": True}, 300, True),  # two chunks in threads
    ([16, 12, 6], ShockleyDiode(i_s=1e-7), {}, 6, True),  # numpy path for the grounded Shockley layer
    ([16, 12, 6], PiecewiseLinearDiode(), {}, 6, True),  # plain sweeps, numpy
    ([16, 12, 6], None, {}, 6, True),  # linear hidden nodes
]


@pytest.mark.parametrize("sizes,diode,kw,B,compiled", CASES)
def test_grounded_nodes_settle_as_zero_volt_sources(monkeypatch, sizes, diode, kw, B, compiled):
    monkeypatch.setattr(solve_layered, "COMPILED_SWEEPS", compiled)
    net = layered(sizes, diode=diode, rails=(-0.05, 0.05), gain=4.0, seed=3, **kw)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 4, (B, net.n_features))
    y = rng.uniform(-0.05, 0.05, (B, net.n_targets))
    masks = [(rng.random((B, n)) >= 0.4).astype(float) for n in sizes[1:-1]]
    masks[0][0] = 1.0  # sample 0: its first layer free, its second (if any) grounded in part
    beta = 0.5 * float(net.weights[-1].mean())
    with net.grounded(masks):
        free = solve(net, x, tol=1e-13, max_iter=20_000)
        nudged = solve(net, x, y, beta=beta, init=free, tol=1e-13, max_iter=20_000)
    assert net._grounded is None  # the block restores the free circuit
    plain = solve(net, x, tol=1e-13, max_iter=20_000)
    assert np.abs(plain.voltages - free.voltages).max() > 1e-4  # the switches changed the equilibrium
    names = net.free_node_names()
    held = np.hstack([m for m in masks] + [np.ones((B, sizes[-1]))])
    for eq, b in ((free, 0.0), (nudged, beta)):
        assert np.all(eq.voltages[held == 0] == 0.0)  # a grounded node is at 0 V exactly
        assert eq.residual < 1e-12
        for i in (0, 1, B - 1):
            g = _as_sources(net, i, masks)
            ref = solve(g, x[i:i + 1], y[i:i + 1] if b else None, beta=b, tol=1e-13, max_iter=500)
            mine = dict(zip(names, eq.voltages[i]))
            for name, v in zip(g.free_nodes, ref.voltages[0]):
                assert mine[name] == pytest.approx(v, abs=1e-10), (i, name)


def test_grounding_refuses_what_it_cannot_hold():
    net = layered([8, 6, 5, 4], rails=(-0.05, 0.05), gain=4.0)
    x = np.ones((3, 4))
    with pytest.raises(NetworkError, match="one mask per hidden layer"):
        with net.grounded([np.ones((3, 6))]):
            pass
    with pytest.raises(NetworkError, match="hidden layer 1 must be a .3, 6. array|hidden layer 1 must be a"):
        with net.grounded([np.full((3, 6), 0.5), None]):
            pass
    with pytest.raises(NetworkError, match="hidden layer 2"):
        with net.grounded([None, np.ones((3, 6))]):
            pass
    with pytest.raises(NetworkError, match="different batches"):
        with net.grounded([np.ones((3, 6)), np.ones((2, 5))]):
            pass
    with net.grounded([np.ones((3, 6)), None]):
        with pytest.raises(InputError, match="settles 2 samples but the grounded nodes are set for 3"):
            solve(net, x[:2])
        solve(net, x)
        with pytest.raises(NetworkError, match="does not hold grounded nodes"):
            solve(net, x, method="newton")
    assert net.copy()._grounded is None


def _trainer(dropout, **kw):
    from eqprop.learning.runs import build_network, make_backend
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig
    from eqprop.learning.runs import resolved

    cfg = resolved(TrainConfig(hidden=[12], dropout=dropout, momentum=0.0, lr=[1.0, 1.0], **kw))
    backend = make_backend(cfg, build_network(cfg, 5, 3))
    return EqPropTrainer(backend, cfg, None, 3), cfg


def test_dropout_moves_no_input_conductance_of_a_node_grounded_in_every_sample():
    """A node grounded through both phases sees the same drop to every clamped source in both: EqProp moves none of
    its input or bias conductances, and moves its conductances to the outputs (they load them)."""
    tr, cfg = _trainer(0.5, seed=4)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 3, (8, 5))
    labels = rng.integers(0, 3, 8)
    masks = tr.grounding(8)
    assert 0.3 < 1 - masks[0].mean() < 0.7  # about half grounded
    masks[0][:, :4] = 0.0  # nodes 0-3 grounded in every sample
    masks[0][:, 4:] = 1.0
    tr.grounding = lambda batch: masks
    before = [p.copy() for p in tr.backend.parameters()]
    tr.step(x, labels)
    after = tr.backend.parameters()
    w_in, w_out, b_in = after[0] - before[0], after[1] - before[1], after[2] - before[2]
    assert np.all(w_in[:, :4] == 0) and np.all(b_in[:, :4] == 0)
    assert np.abs(w_in[:, 4:]).max() > 0 and np.abs(w_out[:4]).max() > 0
    assert tr.backend.network._grounded is None
    # evaluation settles the whole circuit: the same as a trainer without dropout on the same network
    plain = tr.evaluate(x, labels)
    assert plain == tr.evaluate(x, labels)


def test_dropout_is_refused_where_it_means_nothing():
    from eqprop.learning.trainer import ConfigError, TrainConfig

    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(ConfigError, match="dropout"):
            TrainConfig(dropout=bad).validate()
    with pytest.raises(ConfigError, match="the spice backend has no such switches"):
        TrainConfig(backend="spice", dropout=0.2).validate()


def test_weight_decay_pulls_each_conductance_by_lr_times_decay_of_itself():
    rng = np.random.default_rng(1)
    x, labels = rng.uniform(0, 3, (6, 5)), rng.integers(0, 3, 6)
    plain, _ = _trainer(0.0, seed=2)
    decayed, _ = _trainer(0.0, seed=2, weight_decay=0.03)
    before = [p.copy() for p in plain.backend.parameters()]
    plain.step(x, labels)
    decayed.step(x, labels)
    for b, p, d in zip(before, plain.backend.parameters(), decayed.backend.parameters()):
        inside = (p > 0) & (d > 0)  # away from the lower bound's clip
        assert inside.mean() > 0.9
        np.testing.assert_allclose((d - p)[inside], -1.0 * 0.03 * b[inside], rtol=1e-6, atol=1e-18)
    from eqprop.learning.trainer import ConfigError, TrainConfig

    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(ConfigError, match="weight_decay"):
            TrainConfig(weight_decay=bad).validate()
    with pytest.raises(ConfigError, match="--weight-decay"):
        TrainConfig(backend="lava-onchip", weight_decay=0.1, momentum=0.0).validate()
