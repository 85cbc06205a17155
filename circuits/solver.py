"""``solve``: the native batched equilibrium of any network from this package.

Layered networks use exact block coordinate descent (``method='bcd'``); graphs, or layered networks
with ``method='newton'``, use the sparse Newton / active-set path. Both return an Equilibrium whose
``residual`` is the largest Kirchhoff current residual (amperes) over every node and sample.
"""
from __future__ import annotations

import math

import numpy as np

from . import kernels, memory
from .energy import clamp_residual, node_conductance, readout
from .equilibrium import Equilibrium
from .errors import ConvergenceError, InputError, NetworkError
from .network import GraphNetwork, LayeredNetwork
from . import solve_layered
from .solve_layered import INIT_NOT_FINITE, bcd
from .solve_graph import compile_graph, solve_graph

METHODS = ("auto", "bcd", "newton")


def solve(network, x, y=None, beta: float = 0.0, init=None, *, tol: float = 1e-10,
          max_iter: int = 2000, method: str = "auto", omega: float | None = None) -> Equilibrium:
    """Equilibrium node voltages of every sample.

    x: features (batch, n_features); y: targets (batch, n_targets), needed when beta != 0;
    beta: nudging conductance (siemens), the current beta (y - prediction) is injected at the outputs;
    init: an Equilibrium or (batch, n_free) voltages to warm-start from (the nudged phase starts from
    the free one); tol: voltage change (V) at which the solve stops; max_iter: sweeps / iterations
    before a ConvergenceError naming the worst sample; omega: over-relaxation of the layered sweeps where
    every layer's diode model allows it (linear and ideal-diode layers: projected SOR; Shockley layers
    node by node where a curvature bound guarantees descent): None measures the best factor on the
    first sweeps, 1.0 gives plain block coordinate descent, a number in (0, 2) fixes it. The factor used
    is in ``Equilibrium.info['omega']``.
    """
    checked = None
    if type(network) is LayeredNetwork and network._scratch is not None and (method == "auto" or method == "bcd"):
        # a bare call like an earlier one: its arguments were checked when its plan was made, and are the same
        planned, checked = _planned(network, x, y, beta, init, tol, max_iter, omega)
        if planned is not None:
            return planned
    memory.keep()  # once per process: freed temporaries are reused, not faulted in again
    if method not in METHODS:
        raise NetworkError(f"unknown method {method!r}; use one of {METHODS}")
    if not math.isfinite(beta):  # numpy's isfinite costs 2 us a call on a scalar
        raise InputError(f"beta must be finite, got {beta}")
    if not tol > 0:
        raise InputError(f"tol must be positive, got {tol}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter must be a whole number of sweeps >= 1, got {max_iter!r}")
    if omega is not None and not 0.0 < omega < 2.0:
        raise InputError(f"omega must lie in (0, 2), where over-relaxed sweeps converge, got {omega}; "
                         "leave it out to have it measured")
    totals, derived = None, {}
    if checked is not None:  # a plan's check ran and passed (its structure's checks stand): not made twice
        totals, derived = checked
    elif isinstance(network, (LayeredNetwork, GraphNetwork)):
        # conductances may have been edited in place since the network was built; the check forms the signed
        # input weights on the way (``LayeredNetwork.validate``)
        totals = network.validate(derived)
    if isinstance(network, LayeredNetwork):
        if method in ("auto", "bcd"):
            return _solve_layered(network, x, y, beta, init, tol, max_iter, omega, totals,
                                  derived.get("source_weights"))
        if network._grounded is not None:
            raise NetworkError(f"method={method!r} does not hold grounded nodes (LayeredNetwork.grounded); inside "
                               "that block use method='bcd' or 'auto'")
        return _solve_graph(network.to_graph(), x, y, beta, init, tol, max_iter, layer_sizes=network.free_sizes)
    if isinstance(network, GraphNetwork):
        if method == "bcd":
            raise NetworkError("method='bcd' needs a LayeredNetwork; graphs are solved with method='newton'")
        return _solve_graph(network, x, y, beta, init, tol, max_iter)
    raise NetworkError(f"solve() takes a LayeredNetwork or GraphNetwork, got {type(network).__name__}")


def _planned(net: LayeredNetwork, x, y, beta, init, tol, max_iter, omega):
    """The solve of a bare call whose network, batch size, phase and settings match a kept plan
    (``solve_layered.Plan``, kept by the general path's last such call): the same checks, compiled calls and result
    bit for bit, without the layers of Python around them (the general path's Python, run after passes that empty the
    caches it needs, took about a sixth of a bare call at batch 64: ``benchmarks/bare_floor.py``). Returns (the
    equilibrium, None) or, where no plan serves or anything is off, (None, what the general path needs): None, or
    where the plan's check of the network ran and passed, (the node totals, {"source_weights": G+ - G-}) for it to
    use instead of checking again (the conductances changed since the plan's set-up was made, the inputs or the
    start are bad, the solve does not converge: the general path then runs, and raises where it must)."""
    plans = net._scratch.get("plans")
    if not plans or net._fixed is not None or net._grounded is not None or type(x) is not np.ndarray or x.ndim != 2:
        return None, None
    B = x.shape[0]
    key = solve_layered.plan_key(B, beta, beta != 0.0 and y is not None, tol, max_iter, omega, 1 if init is None else 2)
    plan = plans.get(key)
    if plan is None or x.dtype != np.float64 or x.shape[1] != plan.features:
        return None, None
    if plan.stamp != solve_layered.plan_stamp(net):  # the structure changed: every plan is stale (and holds old
        plans.clear()  # arrays)
        return None, None
    ws = tuple(net.weights)
    signed = plan.signed_buffer
    totals = np.empty(plan.n_free)
    # the network's check, and its numbers against those the plan's set-up was made from: before any input's
    # check, as the general path names a fault of the network first
    state = kernels.plan_check(ws, tuple(net.biases), signed, plan.signed, plan.split, totals, plan.rows, plan.cols,
                               plan.kept)
    if state == 0:
        return None, None
    checked = (net.layer_views(totals), {"source_weights": signed} if plan.signed else {})
    if state == 1:  # the network was edited: this plan is stale (the general path keeps a new one once the network
        plans.pop(key, None)  # stays unchanged for a call)
        return None, checked
    if not plan.on_drive and not kernels.all_finite(x):
        return None, checked
    targets_checked = kernels.EMPTY  # targets for the round to check (NaN/inf)
    if y is not None:
        if type(y) is not np.ndarray or y.dtype != np.float64 or y.shape != (B, plan.targets_n) \
                or not y.flags.c_contiguous:
            return None, checked
        targets_checked = y
    elif beta != 0.0:
        return None, checked
    start = kernels.EMPTY
    if init is not None:
        start = init.voltages if type(init) is Equilibrium else init
        if (type(start) is not np.ndarray or start.shape != (B, plan.n_free) or not start.flags.c_contiguous
                or start.dtype != np.float64):
            return None, checked
    if beta < 0:
        try:
            _check_negative_beta(net, beta, plan.setup[0])
        except InputError:  # raised by the general path, after its checks of y and the start
            return None, checked
    drive = np.dot(x, signed if plan.signed else ws[0])  # C-contiguous float64, as the bias row: the kernel takes both
    if plan.nudge_last:  # the output layer's bias row and the nudge, as ``_kernel_args`` adds them
        ks = (drive, *plan.ks[:-1], plan.ks[-1] + beta * y)
    else:
        ks = (drive, *plan.ks)
    targets = y if plan.targets else solve_layered._NO_TARGETS
    layers = tuple(np.empty((B, n)) for n in plan.widths)
    voltages = np.empty((B, plan.n_free))
    pred = np.empty((B, plan.widths[-1] // 2)) if plan.pairs_out else kernels.EMPTY
    # the bias drive added (and the drive checked), the start, the sweeps, the join, the readout: one compiled call
    sweeps, change, omega, started, finite, drive_ok, y_ok = kernels.biased_round(
        targets_checked, plan.bias0, plan.mode, start, voltages, pred, layers, ks, *plan.head, targets, *plan.tail)
    if not (y_ok and started and finite and change <= tol and (drive_ok or not plan.on_drive)):
        return None, checked  # the general path names what is wrong (NaN/inf in y, the start or x, no convergence)
    setup = plan.setup
    const = [drive, *setup[5][1:]]

    def largest_residual():
        res = solve_layered._residual(net, setup[0], const, setup[1], setup[2], list(layers), y, beta, None)
        return float(max(np.abs(r).max(initial=0.0) for r in res))

    return Equilibrium(voltages, x, pred if plan.pairs_out else layers[-1], int(sweeps), largest_residual, beta, y,
                       net.free_sizes, "bcd", {"omega": float(omega)}), None


def _prepare(network, x, y, beta, init, n_free, check_x: bool = True, check_init: bool = True):
    """x, y and init checked (``check_init=False``: init's shape only, for a caller that checks its values as it
    copies them)."""
    x = network.check_inputs(x) if check_x else network.check_inputs(x, finite=False)
    B = x.shape[0]
    if beta != 0.0:
        if y is None:
            raise InputError("a nudged solve (beta != 0) needs targets y")
        y = network.check_targets(y, B)
    elif y is not None:
        y = network.check_targets(y, B)
    if init is not None:
        init = init.voltages if isinstance(init, Equilibrium) else np.asarray(init, dtype=float)
        if init.shape != (B, n_free):
            raise InputError(f"init must have shape ({B}, {n_free}) (batch, free nodes), got {init.shape}")
        if check_init and not kernels.all_finite(init):
            raise InputError(INIT_NOT_FINITE)
    return x, y, init


def _solve_layered(net: LayeredNetwork, x, y, beta, init, tol, max_iter, omega=None, totals=None,
                   signed=None) -> Equilibrium:
    """``totals``, ``signed``: the node totals and signed input weights the network's check returned (None: derived
    here)."""
    n_free = sum(net.free_sizes)
    # NaN and inf in x always reach the source drive (x @ (G+ - G-), the conductances checked finite), so
    # where the first layer is narrower than x, bcd checks that product instead of x: a pass over a smaller
    # array; on a hit it runs the check of x, whose message names the sample and column.
    on_drive = net.free_sizes[0] < net.n_features
    x, y, init = _prepare(net, x, y, beta, init, n_free, check_x=not on_drive, check_init=False)
    init_layers = start = None
    if init is not None:
        if kernels.serves(init):  # bcd copies it into its layers and checks it in one compiled pass
            start = init
        else:  # the layers' columns of init (views: bcd copies them)
            if not kernels.all_finite(init):
                raise InputError(INIT_NOT_FINITE)
            init_layers, a = [], 0
            for n in net.free_sizes:
                init_layers.append(init[:, a:a + n])
                a += n
    if beta < 0:
        _check_negative_beta(net, beta, totals)
    joined = {}
    layers, sweeps, change, residual, omega = bcd(net, x, y, beta, init_layers, tol, max_iter, omega, totals,
                                                  check_drive=on_drive, signed=signed, joined=joined, start=start)
    if change <= tol and net.op_amps:
        joined.clear()  # the op-amps' rounds move the layers on
        layers, sweeps, change, residual = _settle_amplifiers(net, x, y, beta, layers, sweeps, tol, max_iter, totals,
                                                              signed)
    if change > tol:
        res = residual()
        totals = node_conductance(net)
        per_sample = np.max([np.abs(r / s).max(1) for r, s in zip(res, totals)], axis=0)
        worst = int(np.argmax(per_sample))
        worst_res = float(max(np.abs(r[worst]).max() for r in res))
        raise ConvergenceError(
            f"block coordinate descent did not converge in {max_iter} sweeps (last change {change:.3e} V > tol "
            f"{tol:.1e} V): sample {worst} has KCL residual {worst_res:.3e} A; raise max_iter or tol", worst, worst_res)
    if "voltages" in joined:  # the compiled sweeps' chunk threads joined their rows
        voltages, finite = joined["voltages"], joined["finite"]
    else:
        voltages, finite = kernels.join_finite(layers)
    if not finite:
        worst = int(np.argwhere(~np.isfinite(voltages))[0, 0])
        raise ConvergenceError(f"the solve diverged (non-finite voltages at sample {worst})", worst, np.inf)
    def largest_residual():
        return float(max(np.abs(r).max(initial=0.0) for r in residual()))

    prediction = joined["prediction"] if "prediction" in joined else readout(net, layers[-1])
    return Equilibrium(voltages, x, prediction, sweeps, largest_residual, beta, y,
                       net.free_sizes, "bcd", {"omega": omega})


def _amplifier_drives(net: LayeredNetwork, layers):
    """(extra drives per layer, shifts): what the op-amps add to the ideal amplifiers' drives given the layers.

    Connection c's op-amps output V_o = a V + s instead of a V (-a V + s for the inverting half of a differential
    one); the driven layer then receives s G more and the driving node gives up s (its row's conductance) / a more
    through the CCCS (takes it, for an inverting half, whose CCCS passes -1/a)."""
    extra = [None] * net.n_connections
    shifts = []
    for c in net.amplified:
        a, w = net.gains[c], net.weights[c]
        s = net.amplifier_output(c, layers[c - 1], layers[c]) - a * net.driven(c, layers[c - 1])
        shifts.append(s)
        extra[c] = s @ w
        signs = net.row_signs(c)
        back = -net.to_drivers(c, s * ((w.sum(1) if signs is None else signs * w.sum(1)) / a))
        extra[c - 1] = back if extra[c - 1] is None else extra[c - 1] + back
    return extra, shifts


ANDERSON = 5  # rounds the graph solver's op-amp settling extrapolates from
NEWTON_ROUNDS = 100  # Newton steps the graph solver gives op-amp networks before the held-shift rounds


def _settle_amplifiers(net: LayeredNetwork, x, y, beta, layers, sweeps, tol, max_iter, totals, signed=None):
    """The op-amps' equilibrium: the layers are solved with the op-amps' outputs held (as drives), the outputs
    recomputed from the layers (``OpAmp.output``, exact at DC), until they move less than tol. The fixed point is
    the circuit's KCL; each round is a warm-started solve, and the rounds contract by about the op-amps' departure
    from an ideal amplifier (a / A0, R_f G) or, where one saturates, by the share of its driver's conductance it
    loads. Returns (layers, total sweeps, last change, residual)."""
    extra, shifts = _amplifier_drives(net, layers)
    moved = np.inf
    while True:
        layers, more, change, residual, _ = bcd(net, x, y, beta, layers, tol, max(1, max_iter - sweeps), 1.0,
                                                totals, extra=extra, signed=signed)
        sweeps += more
        extra, new = _amplifier_drives(net, layers)
        moved = max(float(np.abs(n - o).max(initial=0.0)) for n, o in zip(new, shifts))
        shifts = new
        if moved <= tol or change > tol or sweeps >= max_iter:
            break
    if moved > tol:
        change = max(change, moved)
    return layers, sweeps, change, residual


def _check_negative_beta(net: LayeredNetwork, beta: float, totals=None) -> None:
    """A negative nudge subtracts conductance at the outputs; past the nodes' own it leaves no minimum.
    ``totals``: the node totals ``validate`` returned (None: summed here, a pass over every conductance)."""
    S = (node_conductance(net) if totals is None else totals)[-1]
    if net.readout == "pairs":
        h = S.size // 2
        limit = float(np.min(S[:h] * S[h:] / (S[:h] + S[h:])))
    else:
        limit = float(S.min())
    if -beta >= limit:
        raise InputError(f"beta={beta:.3g} S is too negative: the output nodes' conductance allows |beta| < "
                         f"{limit:.3g} S, beyond which the nudged energy has no minimum; use a smaller |beta|")


def _solve_graph(net: GraphNetwork, x, y, beta, init, tol, max_iter, layer_sizes=None, compiled=None) -> Equilibrium:
    """``compiled``: the graph's compiled form, where the caller holds it (``parasitics.Crossbars``)."""
    cg = compiled if compiled is not None else net.derived("compiled", lambda: compile_graph(net))
    x, y, init = _prepare(net, x, y, beta, init, len(cg.free))
    sources = net.encode_inputs(x)
    v, iterations, r = solve_graph(cg, sources, y, beta, init, tol, max_iter)
    if cg.amps is not None:
        settled = None
        if not any(c.diode.hard for c, _ in cg.groups):
            # op-amps and smooth nodes: Newton on the whole KCL, the op-amps' slopes in its Jacobian (from the
            # ideal amplifiers' point); saturation makes KCL piecewise smooth, and where Newton cycles between
            # pieces the held-shift rounds below take over
            try:
                settled = solve_graph(cg, sources, y, beta, v, tol, NEWTON_ROUNDS, with_amps=True)
            except ConvergenceError:
                settled = None
        v, iterations, r = settled or _settle_graph_amplifiers(cg, sources, y, beta, v, iterations, tol, max_iter)
    r = _complementary_residual(cg, v, r.reshape(v.shape))
    prediction = v @ cg.R.T.toarray()
    return Equilibrium(v, x, prediction, iterations, float(np.abs(r).max(initial=0.0)), beta, y,
                       layer_sizes, "newton", {"free_nodes": cg.free})


def _settle_graph_amplifiers(cg, sources, y, beta, v, iterations, tol, max_iter):
    """The graph's op-amps as the layered solver settles them (``_settle_amplifiers``): solved with their shifts
    from the ideal output held as drives, the shifts recomputed from the solution, until they move less than tol.

    In a graph an op-amp can be most of its own driver's load (a saturated one then feeds its output back through
    its CCCS at nearly the same strength), so the plain rounds can contract slowly, or cycle where an amplifier
    swings in and out of saturation; each sample's shifts are extrapolated from its last ANDERSON rounds (Anderson
    acceleration, type II), and where that extrapolation is not trusted the sample takes a damped plain step."""
    amps = cg.amps
    shifts = amps.shifts(v, sources)
    B = shifts.shape[0]
    hist_f: list = [[] for _ in range(B)]  # per sample: the moves (F(s) - s) and the F(s) of the last rounds
    hist_g: list = [[] for _ in range(B)]
    last, damping = np.full(B, np.inf), np.ones(B)
    for _ in range(max_iter):
        v, more, r = solve_graph(cg, sources, y, beta, v, tol, max_iter, extra=amps.rhs(shifts))
        iterations += more
        new = amps.shifts(v, sources)
        f = new - shifts
        moved_b = np.abs(f).max(1) if f.shape[1] else np.zeros(B)
        moved = float(moved_b.max(initial=0.0))
        if moved <= tol:
            return v, iterations, r
        nxt = shifts + damping[:, None] * f
        for b in range(B):
            # a round that does not shrink the move (an amplifier swinging in and out of saturation: a cycle)
            # halves the sample's plain step; one that shrinks it fast lets it grow back
            if moved_b[b] >= last[b]:
                damping[b] = max(damping[b] / 2, 1 / 64)
            elif moved_b[b] < 0.5 * last[b]:
                damping[b] = min(2 * damping[b], 1.0)
            last[b] = moved_b[b]
            hist_f[b].append(f[b].copy())
            hist_g[b].append(new[b].copy())
            if len(hist_f[b]) > ANDERSON + 1:
                hist_f[b].pop(0), hist_g[b].pop(0)
            if len(hist_f[b]) > 1:
                dF = np.diff(np.array(hist_f[b]), axis=0).T
                dG = np.diff(np.array(hist_g[b]), axis=0).T
                gamma = np.linalg.lstsq(dF, f[b], rcond=None)[0]
                step = new[b] - dG @ gamma
                # an extrapolation far beyond the plain round's move is not trusted (the map is piecewise: a
                # saturating amplifier changes it)
                if np.isfinite(step).all() and np.abs(step - shifts[b]).max() <= 10 * moved_b[b]:
                    nxt[b] = step
        shifts = nxt
    worst = int(np.argmax(moved_b))
    raise ConvergenceError(f"the op-amps' outputs did not settle in {max_iter} rounds (last move {moved:.3e} V > tol "
                           f"{tol:.1e} V, sample {worst}); raise max_iter or tol", worst, moved)


def _complementary_residual(cg, v, r):
    """At an ideal diode's rail only the current the diode can carry is allowed; count the rest.

    The same rule as the layered path (energy.clamp_residual); smooth diodes' currents are already in r.
    """
    r = r.copy()
    for clamp, ix in cg.groups:
        if clamp.diode.hard:
            r[:, ix] = clamp_residual(clamp, v[:, ix], r[:, ix])
    return r
