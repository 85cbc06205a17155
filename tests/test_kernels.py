"""The layered solver's compiled per-layer updates (circuits/kernels.py) against its numpy path: the same
equilibrium, sweep for sweep, on every kind of layer the kernels serve, and the numpy path wherever they do not."""
import numpy as np
import pytest

from eqprop.circuits import PiecewiseLinearDiode, ShockleyDiode, kernels, layered, solve
from eqprop.circuits import solve_layered
from eqprop.circuits.energy import readout

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")


def _case(sizes, diode, seed=0, scale=4.0, B=40, **kw):
    net = layered(sizes, diode=diode, rails=(-0.05, 0.05), gain=4.0, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, scale, (B, net.n_features))
    y = rng.uniform(-0.05, 0.05, (B, net.n_targets))
    return net, x, y


def _both(monkeypatch, fn):
    monkeypatch.setenv("EQPROP_KERNELS", "numpy")
    ref = fn()
    monkeypatch.setenv("EQPROP_KERNELS", "")
    return ref, fn()


CASES = [
    ([48, 30, 10], "ideal", {}),
    ([48, 24, 24, 24, 10], "ideal", {}),
    ([48, 30, 10], ShockleyDiode(i_s=1e-7), {}),
    ([48, 24, 24, 10], ShockleyDiode(i_s=1e-9, n=1.5), {}),
    ([48, 30, 10], ShockleyDiode(i_s=1e-7), {"output_diodes": True, "readout": "nodes"}),
    ([48, 30, 10], "ideal", {"output_diodes": True, "readout": "nodes"}),
    ([48, 20, 20, 10], "ideal", {"hidden_pairs": True}),
    ([48, 30, 10], None, {}),
    ([48, 30, 10], "ideal", {"output_diodes": True}),  # clamped output pairs: numpy under a nudge
    ([48, 10], "ideal", {}),  # no hidden layer: the outputs' drive is the sources alone
]


@pytest.mark.parametrize("sizes,diode,kw", CASES)
def test_kernels_give_the_numpy_equilibrium(monkeypatch, sizes, diode, kw):
    net, x, y = _case(sizes, diode, **kw)
    b = float(net.weights[-1].mean())

    def phases():
        free = solve(net, x, tol=1e-12, max_iter=20_000)
        return [free] + [solve(net, x, y, beta=s * b, init=free, tol=1e-12, max_iter=20_000) for s in (1, -1)]

    ref, fused = _both(monkeypatch, phases)
    for r, f in zip(ref, fused):
        assert np.abs(r.voltages - f.voltages).max() < 1e-11
        assert abs(r.iterations - f.iterations) <= 1
        assert f.residual < 1e-15 and np.isfinite(f.info["omega"])


@pytest.mark.parametrize("sizes,diode,kw,B", [
    ([48, 30, 10], "ideal", {}, 40),
    ([48, 24, 24, 24, 10], "ideal", {}, 40),
    ([48, 20, 20, 10], "ideal", {"hidden_pairs": True}, 300),  # two chunks in threads
    ([48, 30, 10], None, {}, 40),
    ([48, 30, 10], "ideal", {"output_diodes": True, "readout": "nodes"}, 40),
    ([48, 10], "ideal", {}, 5),
    ([48, 30, 10], ShockleyDiode(i_s=1e-7), {}, 40),
    ([48, 24, 24, 10], ShockleyDiode(i_s=1e-9, n=1.5), {}, 300),  # two chunks in threads
    ([48, 30, 10], ShockleyDiode(i_s=1e-7), {"output_diodes": True, "readout": "nodes"}, 40),  # nudged clamps
    ([48, 20, 20, 10], ShockleyDiode(i_s=1e-7), {"hidden_pairs": True}, 1),
])
def test_the_compiled_sweep_loop_is_the_python_loop(monkeypatch, sizes, diode, kw, B):
    """Networks of box layers, Shockley layers and linear output pairs run their whole sweep loop compiled
    (``kernels.box_sweeps``, inside each chunk's ``kernels.chunk_sweeps``): the same GEMMs, kernels, per-node
    tolerances and over-relaxation rule as the per-layer loop, so the same sweeps, the same omega and the
    equilibrium to rounding, free and nudged both ways, and the readout the kernel makes is the numpy one's of its
    voltages."""
    net, x, y = _case(sizes, diode, B=B, **kw)
    b = float(net.weights[-1].mean())
    calls = []
    real = kernels.chunk_sweeps
    monkeypatch.setattr(kernels, "chunk_sweeps", lambda *a: calls.append(1) or real(*a))

    def phases():
        free = solve(net, x, tol=1e-12, max_iter=20_000)
        return [free] + [solve(net, x, y, beta=s * b, init=free, tol=1e-12, max_iter=20_000) for s in (1, -1)]

    monkeypatch.setattr(solve_layered, "COMPILED_SWEEPS", False)
    ref = phases()
    assert not calls
    monkeypatch.setattr(solve_layered, "COMPILED_SWEEPS", True)
    got = phases()
    assert len(calls) >= 3  # every phase went through the compiled loop
    for r, g in zip(ref, got):
        assert np.abs(r.voltages - g.voltages).max() < 1e-13
        assert np.array_equal(g.prediction, readout(net, g.outputs))  # bit for bit
        assert r.iterations == g.iterations and r.info["omega"] == pytest.approx(g.info["omega"], rel=1e-12)
    if len(sizes) > 2:  # (one free layer settles in a sweep)
        with pytest.raises(Exception, match="did not converge"):  # the loop stops at max_iter and says so
            solve(net, x, tol=1e-15, max_iter=2)


@pytest.mark.parametrize("small,flat", [(16384, [0, 1, 1]), (300, [0, 0, 1]), (0, [0, 0, 0])])
def test_the_compiled_loop_reads_each_backward_matrix_in_its_layout(monkeypatch, small, flat):
    """A backward matrix of at most ``SMALL_MATRIX`` entries is read contiguous (W^T / a), a larger one as W / a
    transposed, layer by layer (here 24 x 24 and 24 x 10): the compiled loop gives the per-layer loop's sweeps and
    equilibrium with either layout and with both in one network."""
    monkeypatch.setattr(solve_layered, "SMALL_MATRIX", small)
    net, x, y = _case([48, 24, 24, 10], "ideal", B=40)
    totals = net.node_totals()
    setup = solve_layered._setup(net, totals, False, 0.0)
    assert list(setup[-1][7]) == flat  # the compiled tuple's flags
    for c in (1, 2):
        back = setup[-1][1][c]
        assert back.flags.c_contiguous and back.shape == ((24, 24) if c == 1 else (10, 24) if flat[c] else (24, 10))

    def phases():
        free = solve(net, x, tol=1e-12, max_iter=20_000)
        return [free, solve(net, x, y, beta=1e-7, init=free, tol=1e-12, max_iter=20_000)]

    monkeypatch.setattr(solve_layered, "COMPILED_SWEEPS", False)
    ref = phases()
    monkeypatch.setattr(solve_layered, "COMPILED_SWEEPS", True)
    for r, g in zip(ref, phases()):
        assert r.iterations == g.iterations and np.abs(r.voltages - g.voltages).max() < 1e-13


def test_kernels_serve_the_layers_they_can_and_numpy_the_rest(monkeypatch):
    from eqprop.circuits.energy import node_conductance

    net, _, _ = _case([48, 30, 30, 10], ShockleyDiode(i_s=1e-7))
    totals = node_conductance(net)
    free = solve_layered._layer_updates(net, totals, nudged=False, beta=0.0)
    assert all(u is not None for u in free)
    nudged = solve_layered._layer_updates(net, totals, nudged=True, beta=1e-7)
    assert nudged[-1][0] == "pairs" and all(u is not None for u in nudged[:-1])  # linear pairs: 2x2 kernel
    clamped, _, _ = _case([48, 30, 10], "ideal", output_diodes=True)  # clamped pairs: solved half by half
    assert solve_layered._layer_updates(clamped, node_conductance(clamped), True, 1e-7)[-1] is None
    pwl, _, _ = _case([48, 30, 10], PiecewiseLinearDiode())
    assert solve_layered._layer_updates(pwl, node_conductance(pwl), False, 0.0)[0] is None  # no kernel
    monkeypatch.setenv("EQPROP_KERNELS", "numpy")
    assert not kernels.available()
    assert all(u is None for u in solve_layered._layer_updates(net, totals, False, 0.0))


def test_a_warm_start_is_not_written_in_place():
    """The kernels move the layers in place: on the solver's own copy, never on the caller's arrays."""
    net, x, y = _case([48, 30, 10], "ideal")
    free = solve(net, x)
    before = free.voltages.copy()
    init = free.voltages.copy()
    solve(net, x, y, beta=1e-7, init=free)
    solve(net, x, y, beta=1e-7, init=init)
    assert np.array_equal(free.voltages, before) and np.array_equal(init, before)


def test_box_kernel_is_one_projected_sor_step():
    """The kernel against the formula it implements, on a hand-sized layer: x = clip(T/S), v + omega (x - v)
    clipped, and omega max |x - v| returned."""
    rng = np.random.default_rng(1)
    ta, tb = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    k = np.broadcast_to(rng.normal(size=4), (5, 4))
    S = rng.uniform(1, 3, 4)
    v = rng.uniform(-0.5, 0.5, (5, 4))
    exact = np.clip((ta + tb + k) / S, -0.4, 0.4)
    want = np.clip(v + 1.5 * (exact - v), -0.4, 0.4)
    step = kernels.box_update(ta, tb, k, v0 := v.copy(), 2, 1.0 / S, -0.4, 0.4, 1.5)
    assert np.allclose(v0, want, atol=1e-15) and step == pytest.approx(1.5 * np.abs(exact - v).max(), rel=1e-14)
    one = v.copy()
    kernels.box_update(ta, tb, k, one, 1, 1.0 / S, -0.4, 0.4, 1.0)  # one term: tb ignored
    assert np.allclose(one, np.clip((ta + k) / S, -0.4, 0.4), atol=1e-15)


def test_a_nan_step_reaches_the_stopping_test():
    """The largest step is taken over the steps' bit patterns (a vectorised integer max): a NaN anywhere in the
    drive must come back as a NaN step, never as the largest finite one (a float max skips a NaN that comes
    after a number, which would let the sweeps stop on it), and an infinite drive as a step that is not finite."""
    rng = np.random.default_rng(3)
    ta = rng.normal(size=(6, 9))
    v = rng.uniform(-0.3, 0.3, (6, 9))
    S = rng.uniform(1, 3, 9)
    for bad, want in ((np.nan, np.isnan), (np.inf, lambda s: not np.isfinite(s))):
        for where in ((0, 0), (3, 4), (5, 8)):
            t = ta.copy()
            t[where] = bad
            step = kernels.box_update(t, t, np.zeros((6, 9)), v.copy(), 1, 1.0 / S, -np.inf, np.inf, 1.0)
            assert want(step), (bad, where, step)
    pairs = np.zeros((6, 8))
    t = rng.normal(size=(6, 8))
    t[2, 1] = np.nan
    assert np.isnan(kernels.pairs_update(t, np.zeros((6, 8)), pairs, np.ones(8), 0.5, np.zeros((6, 4)), 1.0))
    diode = ShockleyDiode(i_s=1e-7)
    from eqprop.circuits import DiodeClamp

    t = rng.normal(0, 3e-7, (6, 9))
    t[4, 2] = np.nan
    step = diode.layer_update(DiodeClamp(diode, -0.05, 0.05))(t, t, np.zeros((6, 9)), v.copy(), 1, S * 1e-6,
                                                               1e6 / S, 1.0, 1e-14)
    assert np.isnan(step)
    # and the steps' largest is the float max exactly, at any position and sign
    t = ta.copy()
    w = v.copy()
    step = kernels.box_update(t, t, np.zeros((6, 9)), w, 1, 1.0 / S, -np.inf, np.inf, 1.0)
    assert step == np.abs(ta * (1.0 / S) - v).max()


def test_shockley_kernel_solves_each_node():
    """Each node's KCL S V - T + I_clamp(V) = 0 holds after one call at omega 1, from any start."""
    from eqprop.circuits import DiodeClamp

    diode = ShockleyDiode(i_s=1e-7)
    clamp = DiodeClamp(diode, -0.05, 0.05)
    rng = np.random.default_rng(2)
    S = rng.uniform(1e-6, 3e-6, 6)
    T = rng.normal(0, 3e-7, (7, 6)) + rng.choice([-1, 1], (7, 6)) * 1e-5  # a share far forward-biased
    v = rng.uniform(-0.3, 0.3, (7, 6))
    update = diode.layer_update(clamp)
    update(T, T, np.zeros((7, 6)), v, 1, S, 1.0 / S, 1.0, 1e-14)
    kcl = S * v - T + clamp.current(v)
    assert np.abs(kcl).max() < 1e-16
    # the numpy path, cold and from starts far up the exponentials (before the junction limiting and the
    # forward bound it stopped after 100 iterations more than 1 V past the rails, KCL residual 1e25 A)
    for start in (None, np.full((7, 6), 4.0), np.full((7, 6), -4.0)):
        ref = clamp.solve(S, T, start)
        assert np.abs(S * ref - T + clamp.current(ref)).max() < 1e-16
        assert np.allclose(v, ref, atol=1e-13)


def test_the_fast_pass_exponential_is_exp_to_the_last_bits():
    """``_exp_rows`` (the vectorisable exp of the Shockley fast pass) against numpy's over the range it serves."""
    z = np.concatenate([np.linspace(-700, 700, 20001), np.random.default_rng(3).uniform(-30, 30, 5000),
                        [0.0, -1e-300, 1e-12, 709.0 - 9.0]])
    work = np.zeros((5, z.size))
    work[2] = z
    kernels._exp_rows(work, np.empty(z.size, np.int64))
    assert np.abs(work[2] / np.exp(z) - 1).max() < 5e-16


@pytest.mark.parametrize("bad,ok", [(None, True), (np.nan, False), (-1e-12, False), (-np.inf, False), (np.inf, True)])
def test_conductance_sums_flag_and_sums(bad, ok):
    """validate()'s one pass: the flag fails on NaN and negatives (+inf passes: the totals report it), the
    column and row sums are numpy's to rounding."""
    w = np.random.default_rng(0).uniform(0, 1e-6, (203, 77))
    if bad is not None:
        w[150, 40] = bad
    got = kernels.conductance_sums(w)
    assert got[0] is ok
    if bad is None:
        np.testing.assert_allclose(got[1], w.sum(0), rtol=1e-14)
        np.testing.assert_allclose(got[2], w.sum(1), rtol=1e-14)
    assert kernels.conductance_sums(np.asfortranarray(w)) is None  # not C-contiguous: the numpy path


@pytest.mark.parametrize("where", [None, (0, 0), (101, 76), (102, 0), (203, 40), (-1, -1)])
@pytest.mark.parametrize("bad,ok", [(np.nan, False), (-1e-300, False), (-np.inf, False), (np.inf, True)])
def test_pair_sums_check_sum_and_sign_the_input_pairs(where, bad, ok):
    """The check of an input connection of +x/-x pairs, with its signed weights: the flag fails on NaN and
    negatives in either half (first, last, the halves' edges), the column sums are numpy's sum(0) bit for bit
    (the rows added in order, so the solver's totals do not move by an ulp), the signed weights numpy's
    w[:n] - w[n:]; shapes it cannot take are left to the numpy path."""
    w = np.random.default_rng(0).uniform(0, 1e-6, (204, 77))
    if where is not None:
        w[where] = bad
    diff = np.full((102, 77), 7.0)
    got = kernels.pair_sums(w, diff)
    assert got[0] is (ok or where is None)
    with np.errstate(invalid="ignore"):
        assert got[1].tobytes() == w.sum(0).tobytes()
        assert diff.tobytes() == (w[:102] - w[102:]).tobytes()
    assert kernels.pair_sums(w, np.empty((101, 77))) is None  # the wrong buffer
    assert kernels.pair_sums(w[:203], np.empty((101, 77))) is None  # an odd number of sources
    assert kernels.pair_sums(np.asfortranarray(w), diff) is None


def _loop_totals(net, derived):
    """validate's loop, its compiled path left out."""
    fast = net._checked
    net._checked = lambda derived: None
    try:
        return net.validate(derived)
    finally:
        del net._checked
        assert net._checked == fast


@pytest.mark.parametrize("sizes,kw", [([48, 30, 10], {}), ([48, 24, 24, 24, 10], {"hidden_pairs": True}),
                                      ([25, 7, 6], {"input_pairs": False, "readout": "nodes"}), ([1568, 100, 20], {}),
                                      ([6, 1, 2], {})])
def test_the_compiled_check_gives_the_loops_totals(sizes, kw):
    """validate's compiled path (``LayeredNetwork._checked``) stands in for its loop: the same node totals bit for bit
    (random biases with zeros among them, differential hidden layers, single inputs and outputs), and with +x/-x
    inputs G+ - G- as numpy's."""
    net = layered(sizes, diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=3, **kw)
    rng = np.random.default_rng(4)
    for b in net.biases:
        b[...] = rng.uniform(0, 1e-3, b.shape) * (rng.uniform(size=b.shape) > 0.3)
    for derived in (None, {}):
        fast = net._checked(derived)
        assert fast is not None
        slow = _loop_totals(net, None if derived is None else {})
        assert [t.tobytes() for t in fast] == [t.tobytes() for t in slow]
        assert [t.shape for t in fast] == [(n,) for n in net.free_sizes]
    n = net.n_features
    if net.input_pairs:
        assert derived["source_weights"].tobytes() == (net.weights[0][:n] - net.weights[0][n:]).tobytes()
    else:
        assert "source_weights" not in derived


@pytest.mark.parametrize("fault,message", [
    ("negative bias", r"biases\[1\]\[1, 3\] = -1e-09 S is negative"), ("NaN bias", r"biases\[0\] holds NaN/inf"),
    ("inf bias", r"biases\[1\] holds NaN/inf"), ("floating", "node 2 of layer 2 is floating"),
    ("overflow", "sum past the float range"), ("negative weight", r"weights\[1\]\[4, 2\] = -1e-09 S is negative"),
    ("NaN input weight", r"weights\[0\] holds NaN/inf")])
def test_a_fault_the_compiled_check_finds_is_named_by_the_loop(fault, message):
    """Where the compiled path finds a fault it answers None and the loop names it; a layout the kernels do not take
    (a Fortran-order matrix) goes to the loop too (numpy's sums there: the same totals to rounding)."""
    from eqprop.circuits.errors import NetworkError
    net = layered([48, 30, 10], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=3)
    before = net._checked({})
    if fault == "negative bias":
        net.biases[1][1, 3] = -1e-9
    elif fault == "NaN bias":
        net.biases[0][0, 7] = np.nan
    elif fault == "inf bias":
        net.biases[1][0, 9] = np.inf
    elif fault == "floating":
        net.weights[1][:, 2] = 0.0
        net.biases[1][:, 2] = 0.0
    elif fault == "overflow":
        net.weights[1][:, 5] = 1e308
    elif fault == "negative weight":
        net.weights[1][4, 2] = -1e-9
    else:
        net.weights[0][40, 1] = np.nan
    assert net._checked({}) is None
    with pytest.raises(NetworkError, match=message):
        net.validate({})
    clean = layered([48, 30, 10], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=3)
    clean.weights[1] = np.asfortranarray(clean.weights[1])
    assert clean._checked({}) is None
    for t, b in zip(clean.validate({}), before):
        np.testing.assert_allclose(t, b, rtol=1e-14, atol=0)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (64, 784), (7, 300)])
def test_same_bits_finds_any_one_ulp_change(shape):
    """The kept input product's test: a one-ulp change anywhere (first element, the edges of its 256-element
    blocks, the tail after them, the last) is a difference; -0.0 and 0.0 differ; shapes and dtypes must agree;
    the numpy path (not C-contiguous) answers the same."""
    a = np.random.default_rng(1).uniform(0, 1, shape)
    assert kernels.same_bits(a, a.copy())
    n = a.size
    for k in sorted({0, 255, 256, 257, n - (n % 256) if n % 256 else n - 1, n // 2, n - 1} - {n}):
        if k >= n:
            continue
        b = a.copy()
        b.flat[k] = np.nextafter(b.flat[k], 2.0)
        assert not kernels.same_bits(a, b), k
        assert not kernels.same_bits(np.asfortranarray(a), np.asfortranarray(b)), k
    z = np.zeros(shape)
    assert not kernels.same_bits(z, -z)
    assert not kernels.same_bits(a, a.reshape(-1)[None, :]) or a.shape[0] == 1
    assert not kernels.same_bits(a, a.astype(np.float32))
    assert kernels.same_bits(np.asfortranarray(a), a.copy())


def test_a_split_batch_makes_its_input_product_in_the_chunk_threads(monkeypatch):
    """A new batch split over two threads has each thread make its rows of the input product before its sweeps:
    bare and inside a block (where the product is kept for the nudged phases), the equilibria, the kept product
    and the residuals are those of the product made in a round of its own, bit for bit; a NaN input is still named."""
    from eqprop.circuits import solve_layered, threads
    from eqprop.circuits.errors import InputError

    monkeypatch.setenv(threads.ENV, "2")
    net = layered([40, 16, 6], seed=5, rails=(-0.05, 0.05), gain=3.0)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, (300, 20)), rng.uniform(-0.05, 0.05, (300, 3))
    assert len(solve_layered._chunks(300)) == 2
    got = {}
    for fused in (True, False):
        monkeypatch.setattr(solve_layered, "FUSED_PRODUCT", fused)
        free = solve(net, x)
        nudged = solve(net, x, y, 1e-7, init=free)
        with net.unchanged():
            block_free = solve(net, x)
            kept = np.array(net._fixed["source_drive"][1])
            block_nudged = solve(net, x, y, -1e-7, init=block_free)
        got[fused] = [e.voltages for e in (free, nudged, block_free, block_nudged)] + [kept] + [
            np.array([e.residual for e in (free, nudged, block_free, block_nudged)])]
        bad = x.copy()
        bad[290, 7] = np.nan
        with pytest.raises(InputError, match="sample 290, column 7"):
            solve(net, bad)
    for a, b in zip(got[True], got[False]):
        assert a.tobytes() == b.tobytes()
    monkeypatch.setenv(threads.ENV, "1")  # the batch in one chunk: the same equilibria to the tolerance
    assert len(solve_layered._chunks(300)) == 1
    whole = solve(net, x)
    np.testing.assert_allclose(got[True][0], whole.voltages, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got[True][1], solve(net, x, y, 1e-7, init=whole).voltages, rtol=0, atol=1e-9)


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_the_passes_that_copy_and_check_voltages(bad):
    """The one-pass copies of a solve: the voltages joined side by side (``join_finite``, and into a chunk's rows as
    ``chunk_sweeps`` does), a warm start split into its layers (``split_finite``) and a chunk's rows of a cold one
    zeroed (``chunk_sweeps``' zeroing pass), the bias
    drive added to a product (``add_row``, in place or not): numpy's values bit for bit, and the finiteness flag
    false for a NaN or inf anywhere (first, last, a
    layer's edge)."""
    rng = np.random.default_rng(5)
    layers = [rng.normal(size=(9, n)) for n in (7, 3, 4)]
    for where in [(0, 0, 0), (2, 8, 3), (1, 4, 0), (1, 4, 2)] if bad is not None else [None]:
        ls = [v.copy() for v in layers]
        if where is not None:
            ls[where[0]][where[1], where[2]] = bad
        ref = np.concatenate(ls, axis=1)
        joined, ok = kernels.join_finite(ls)
        assert joined.tobytes() == ref.tobytes() and ok is (bad is None)
        out = np.full((5, 14), 7.0)
        assert kernels._blocks_kernel(out, tuple(v[2:7] for v in ls), False) is (bad is None or not 2 <= where[1] < 7)
        assert out.tobytes() == ref[2:7].tobytes()
        parts, ok = kernels.split_finite(ref, [7, 3, 4])
        assert [p.tobytes() for p in parts] == [v.tobytes() for v in ls] and ok is (bad is None)
        kernels._zero_kernel(tuple(p[3:6] for p in parts))
        assert all(not p[3:6].any() and p[:3].tobytes() == v[:3].tobytes() and p[6:].tobytes() == v[6:].tobytes()
                   for p, v in zip(parts, ls))
        assert all(p.flags.c_contiguous for p in parts)
        assert kernels.split_finite(np.asfortranarray(ref), [7, 3, 4]) == (None, None)
        row = rng.normal(size=14)
        into = np.empty_like(ref)
        assert kernels.add_row(into, ref, row) is (bad is None)
        assert into.tobytes() == (ref + row).tobytes()
        own = ref.copy()
        assert kernels.add_row(own, own, row) is (bad is None)
        assert own.tobytes() == (ref + row).tobytes()


@pytest.mark.parametrize("B", [40, 300])
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_warm_start_with_nan_is_refused_in_one_line(order, B):
    """A NaN or inf in ``init`` is named before any sweep, whether the compiled pass copies it or numpy does (a
    Fortran-order start); a finite start settles to the same equilibrium either way, bit for bit (the layers are
    C-order copies of it either way)."""
    from eqprop.circuits.errors import InputError
    net, x, y = _case([48, 30, 10], "ideal", B=B)  # 300 samples: split over the chunk threads (two or more cores)
    free = solve(net, x)
    start = np.array(free.voltages, order=order)
    nudged = solve(net, x, y, beta=1e-7, init=start)
    assert nudged.voltages.tobytes() == solve(net, x, y, beta=1e-7, init=free).voltages.tobytes()
    for bad, row in ((np.nan, 3), (np.inf, B - 2)):
        start = np.array(free.voltages, order=order)
        start[row, 31] = bad
        with pytest.raises(InputError, match="^init holds NaN/inf voltages$"):
            solve(net, x, y, beta=1e-7, init=start)


def test_a_bare_call_reuses_its_phase_set_up_only_while_what_it_is_made_of_is_unchanged(monkeypatch):
    """Outside ``unchanged()`` each phase's set-up is kept (``solve_layered._recalled_setup``) and made anew after any
    edit in place of what it is made of (the hidden weights, a bias, the input conductances through the node totals,
    a gain, a clamp): every call gives the equilibrium of a fresh copy of the network, bit for bit. A clamp that could
    change in place (an array field) is never kept."""
    from dataclasses import dataclass, replace

    from eqprop.circuits import DiodeClamp, IdealDiode

    made = []
    setup = solve_layered._setup
    monkeypatch.setattr(solve_layered, "_setup", lambda *a: made.append(1) or setup(*a))
    net, x, y = _case([48, 30, 10], "ideal", B=8)
    free = solve(net, x)
    solve(net, x, y, 1e-7, init=free)
    n = len(made)
    for _ in range(3):  # free and nudged calls alternate, as in a training step: each phase keeps its own
        solve(net, x)
        solve(net, x, y, 1e-7, init=free)
        solve(net, x, y, -1e-7, init=free)
    assert len(made) == n + 1  # the second nudge's set-up, once

    def same_as_fresh(remade=True):
        for args in ((), (y, 1e-7)):
            n = len(made)
            got = solve(net, x, *args)
            assert len(made) == n + remade
            assert got.voltages.tobytes() == solve(net.copy(), x, *args).voltages.tobytes()

    edits = [lambda: net.weights[1].__imul__(1.01), lambda: net.biases[1].__iadd__(1e-5),
             lambda: net.biases[0].__iadd__(1e-5), lambda: net.weights[0].__imul__(0.99),
             lambda: setattr(net, "gains", (1.0, 3.0)), lambda: setattr(net, "bias_voltage", 0.5),
             lambda: net.neurons.__setitem__(0, DiodeClamp(IdealDiode(), -0.04, 0.04))]
    for edit in edits:
        edit()
        same_as_fresh()
    same_as_fresh(remade=False)

    @dataclass(frozen=True)
    class Knees(IdealDiode):  # a diode with an array field, which could be written in place
        knees: object = None

    net.neurons[0] = replace(net.neurons[0], diode=Knees(knees=np.zeros(3)))
    same_as_fresh()
    same_as_fresh()  # not kept


def test_kept_set_ups_are_bounded_and_the_oldest_phase_goes_first(monkeypatch):
    """One set-up kept per phase, at most ``SETUP_MEMO_PHASES``: a sweep over many betas keeps the latest ones."""
    net, x, y = _case([48, 30, 10], "ideal", B=4)
    free = solve(net, x)
    betas = [1e-7 * (k + 1) for k in range(solve_layered.SETUP_MEMO_PHASES + 2)]
    for beta in betas:
        solve(net, x, y, beta, init=free)
    kept = net._scratch["setups"]
    assert len(kept) == solve_layered.SETUP_MEMO_PHASES
    assert [phase[1] for phase in kept] == betas[-solve_layered.SETUP_MEMO_PHASES:]


def test_row_drives_made_whole_are_kept_per_batch_size_bounded_and_follow_the_biases():
    """The compiled sweeps take each layer's bias drive as a whole (batch, nodes) array; a bare call keeps the ones it
    made with the phase's set-up (``solve_layered._kernel_args``), per batch size, at most four per layer: calls at
    many batch sizes, in threads' chunks or not, and after an edit of a bias give a fresh copy's equilibrium bit
    for bit."""
    net, x, y = _case([48, 30, 30, 10], "ideal", B=300)
    L = net.n_connections

    def same_as_fresh(B):
        for args in ((), (y[:B], 1e-7)):
            got = solve(net, x[:B], *args)
            fresh = solve(net.copy(), x[:B], *args)
            assert got.voltages.tobytes() == fresh.voltages.tobytes()
            assert got.prediction.tobytes() == fresh.prediction.tobytes()

    for B in (1, 7, 300, 7, 64, 2, 3, 5, 9, 11, 300):
        same_as_fresh(B)
        for _, (_, setup) in net._scratch["setups"].items():
            whole = setup[-1][-1]  # the compiled sweeps' arguments end with the kept whole drives
            assert len(whole) <= 4 * L
            assert all(k.shape[0] == b for (c, b), k in whole.items())
    net.biases[1][0] += 1e-4  # a new set-up, new rows: the kept arrays of the old ones are not used
    same_as_fresh(7)
    same_as_fresh(300)


def _outcome(fn):
    """A solve's voltages, prediction, sweeps and residual as bytes, or its error's type and message."""
    try:
        eq = fn()
    except Exception as e:  # noqa: BLE001 - the error is the outcome compared
        return type(e).__name__, str(e)
    return eq.voltages.tobytes(), eq.prediction.tobytes(), eq.iterations, eq.residual, eq.info["omega"], eq.beta


@pytest.mark.parametrize("sizes,kw,diode", [
    ([48, 30, 10], {}, "ideal"), ([48, 20, 20, 10], {"hidden_pairs": True}, "ideal"),
    ([48, 30, 10], {"readout": "nodes"}, "ideal"), ([24, 12, 6], {"input_pairs": False}, "ideal"),
    ([48, 10], {"readout": "nodes"}, "ideal"), ([48, 30, 10], {}, ShockleyDiode(i_s=1e-7)),
    ([48, 30, 10], {"output_diodes": True, "readout": "nodes"}, ShockleyDiode(i_s=1e-7))])
def test_a_kept_plan_gives_the_general_path_s_result_and_errors(monkeypatch, sizes, kw, diode):
    """A bare call like an earlier one runs its kept plan (``solver._planned``): the same voltages, prediction,
    sweeps, omega and residual bit for bit as the general path, and the same error for every bad argument, input,
    start and edit of the network in place, in the same order (the network's fault first)."""
    calls = []
    real = kernels.plan_check
    monkeypatch.setattr(kernels, "plan_check", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(3)

    def scenarios(net, x, y, free):
        bad_x = x.copy()
        bad_x[2, 1] = np.nan
        bad_y = y.copy()
        bad_y[1, 0] = np.inf
        bad_init = free.voltages.copy()
        bad_init[3, 2] = np.nan
        return [lambda: solve(net, x), lambda: solve(net, x, y, 1e-7, init=free),
                lambda: solve(net, x, y, -1e-7, init=free), lambda: solve(net, x, y, 1e-7, init=free.voltages),
                lambda: solve(net, x, y), lambda: solve(net, x, y, omega=1.0), lambda: solve(net, x, tol=1e-12),
                lambda: solve(net, bad_x), lambda: solve(net, x, bad_y, 1e-7, init=free),
                lambda: solve(net, x, y, 1e-7, init=bad_init), lambda: solve(net, x, None, 1e-7, init=free),
                lambda: solve(net, x, max_iter=2000.0), lambda: solve(net, x, tol=-1.0),
                lambda: solve(net, x, y, np.nan, init=free), lambda: solve(net, x, method="foo"),
                lambda: solve(net, x[:, :-1]), lambda: solve(net, x[0]), lambda: solve(net, x, max_iter=2),
                lambda: solve(net, x, y, -1.0, init=free), lambda: solve(net, x, y, 1e-7, init=free.voltages[:, :-1]),
                lambda: solve(net, x, y.tolist(), 1e-7, init=free.voltages.tolist()),
                lambda: solve(net, x, bad_y, 1e-7, init="abc"), lambda: solve(net, x, bad_y, -1.0, init=free),
                lambda: solve(net, np.asfortranarray(x), np.asfortranarray(y), 1e-7,
                              init=np.asfortranarray(free.voltages))]

    def run(plans):
        monkeypatch.setattr(solve_layered, "PLANS", plans)
        net = layered(sizes, diode=diode, rails=(-0.05, 0.05), gain=4.0, seed=2, **kw)
        x = rng.uniform(0, 3, (9, net.n_features))
        y = rng.uniform(-0.05, 0.05, (9, net.n_targets))
        free = solve(net, x)
        out = []
        for edit in [lambda: None, lambda: net.weights[-1].__imul__(1.01), lambda: net.biases[0].__iadd__(1e-5),
                     lambda: net.weights[0].__imul__(0.99), lambda: setattr(net, "gains", tuple(net.gains)),
                     lambda: setattr(net, "bias_voltage", 0.75),
                     lambda: net.weights.__setitem__(-1, net.weights[-1] * 2),
                     lambda: net.weights[0].__setitem__((0, 0), -1.0), lambda: net.weights[0].__setitem__((0, 0), 1e-4),
                     lambda: net.neurons.__setitem__(0, type(net.neurons[0])(net.neurons[0].diode, -0.04, 0.04)
                                                     if net.neurons[0] is not None else None)]:
            edit()
            for _ in range(2):  # the second round runs the plans the first one kept
                out += [_outcome(s) for s in scenarios(net, x, y, free)]
        return out

    rng = np.random.default_rng(3)
    ref = run(False)
    assert not calls
    rng = np.random.default_rng(3)
    got = run(True)
    assert len(calls) > 50  # the plans served
    assert len(ref) == len(got)
    for i, (r, g) in enumerate(zip(ref, got)):
        assert r == g, (i, [o[:2] if isinstance(o[0], str) else "voltages" for o in (r, g)])


def test_an_edited_network_is_checked_once_a_call_and_planned_again_once_it_stays_unchanged(monkeypatch):
    """Between edits in place a bare call checks the network's conductances once: a stale plan's check (its numbers
    differ) hands its node totals and signed weights to the general path, which does not check again, and the stale
    plan goes; once the network stays unchanged for a call a plan is kept again and serves the next."""
    from eqprop.circuits.network import LayeredNetwork

    checks, planned = [], []
    real_check, real_validate = kernels.plan_check, LayeredNetwork.validate
    monkeypatch.setattr(kernels, "plan_check", lambda *a: planned.append(1) or real_check(*a))
    monkeypatch.setattr(LayeredNetwork, "validate", lambda self, *a: checks.append(1) or real_validate(self, *a))
    net, x, _ = _case([48, 30, 10], "ideal", B=8)  # (checked once when built)
    for _ in range(3):
        solve(net, x)
    assert (len(checks), len(planned)) == (1 + 2, 1)  # set-up made, recalled (a plan kept), planned
    for k in range(4):  # an edit before every call: one check each, by the stale plan first, then none
        net.weights[1] *= 1.001
        got = solve(net, x)
        assert got.voltages.tobytes() == solve(net.copy(), x).voltages.tobytes()
    assert len(planned) == 2 and len(checks) == 3 + 3 + 4  # the stale plan's check, then 3; the fresh copies' 4
    solve(net, x)  # unchanged since the last call: a plan kept again
    solve(net, x)
    assert len(planned) == 3


def _statistics(net, x, y, paired, compiled, monkeypatch):
    """``statistics_difference`` of a network's centred phases, on the compiled path or numpy's."""
    energy = _energy_module()

    b = 1e-3 * float(net.weights[-1].mean())
    free = solve(net, x)
    hi, lo = (solve(net, x, y, beta=s * b, init=free) for s in (1, -1))
    src = x if net.input_pairs else net.encode_inputs(x)
    monkeypatch.setattr(energy, "COMPILED_STATISTICS", compiled)
    return energy.statistics_difference(net, src, hi.layers, lo.layers, paired=paired)


def _bits(stats):
    return [(s.plus.tobytes(), s.row.tobytes()) if hasattr(s, "row") else (s.shape, s.tobytes()) for s in stats]


@pytest.mark.parametrize("sizes,kw", [
    ([48, 30, 10], {}),
    ([48, 24, 24, 24, 10], {}),
    ([40, 12, 6], {"readout": "nodes", "gain": 1.0}),
    ([20, 16, 8], {"input_pairs": False, "gain": 2.5}),
    ([48, 2, 2], {}),
])
@pytest.mark.parametrize("B", [1, 7, 300])
def test_the_compiled_statistics_are_numpy_s_bit_for_bit(monkeypatch, sizes, kw, B):
    """Each connection's operands and bias statistics, made in one compiled pass, give the numpy lines' numbers to
    the last bit (the sums over the batch row by row from 0.0, so a -0.0 drop of a node on its rail in both phases
    sums as numpy's does): the step's update, hence a run, does not change with the path. Input scale 4 puts hidden
    nodes on the rails."""
    kw = {"gain": 4.0, **kw}
    net = layered(sizes, diode="ideal", rails=(-0.05, 0.05), seed=B, **kw)
    net.bias_voltage = 0.7
    rng = np.random.default_rng(B)
    x, y = rng.uniform(0, 4, (B, net.n_features)), rng.uniform(-0.05, 0.05, (B, net.n_targets))
    for paired in (False, True):
        got = _statistics(net, x, y, paired, True, monkeypatch)
        assert _bits(got) == _bits(_statistics(net, x, y, paired, False, monkeypatch))
        assert isinstance(got[0], _energy_module().PairedRows) == (paired and net.input_pairs)


def _energy_module():
    """``circuits/energy.py`` (the package's ``energy`` is its function of that name)."""
    import importlib

    return importlib.import_module("eqprop.circuits.energy")


@pytest.mark.parametrize("case", ["hidden pairs", "one-node layer", "op-amps", "float32 voltages", "too few sources"])
def test_the_statistics_the_kernels_do_not_serve_take_the_numpy_lines(monkeypatch, case):
    """Differential hidden layers, a one-node layer (numpy sums its column pairwise), op-amps with a finite gain,
    voltages that are not float64 and sources with fewer columns than the features (the kernel would read past
    them) take the numpy path: the kernels are not called, and numpy's lines refuse what they cannot take."""
    energy = _energy_module()

    def refuse(*a):
        raise AssertionError("the kernels were called")

    kw = {"hidden pairs": {"hidden_pairs": True}, "op-amps": {"amplifier": "a0=1e3"}}.get(case, {})
    sizes = [24, 1, 4] if case == "one-node layer" else [24, 8, 4]
    net = layered(sizes, diode="ideal", rails=(-0.05, 0.05), gain=2.0, seed=0, **kw)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (9, net.n_features)), rng.uniform(-0.05, 0.05, (9, net.n_targets))
    free = solve(net, x)
    hi, lo = (solve(net, x, y, beta=s * 1e-7, init=free) for s in (1, -1))
    layers_hi, layers_lo = hi.layers, lo.layers
    if case == "float32 voltages":
        layers_hi = [v.astype(np.float32) for v in layers_hi]
    monkeypatch.setattr(kernels, "input_statistics", refuse)
    monkeypatch.setattr(kernels, "layer_statistics", refuse)
    if case == "too few sources":
        with pytest.raises(ValueError):
            energy.statistics_difference(net, x[:, :-1], layers_hi, layers_lo)
        return
    ref = [np.asarray(s) for s in energy.statistics_difference(net, x, layers_hi, layers_lo)]
    assert all(np.isfinite(s).all() for s in ref)
