"""Exact block coordinate descent on layered networks (Scellier 2024, "fast DRN").

Given its neighbouring layers, a layer's nodes do not interact, so the energy restricted to one layer
is a sum of one-node problems solved in closed form (ideal and piecewise-linear diodes) or by a
per-node Newton step (Shockley). Sweeping the layers in turn is block coordinate descent on a convex
energy: each step can only lower it, and the fixed point is the equilibrium. Every operation acts on
the whole batch at once.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import kernels, threads
from .energy import clamp_residual, node_conductance, nudge_current
from .errors import InputError
from .network import LayeredNetwork
from .node_solve import solve_nodes


def source_drive(net: LayeredNetwork, x, signed=None) -> np.ndarray:
    """Drive of layer 1 from the sources: the costliest product, done once per solve.

    With +x/-x pairs the two conductances of a feature act as one signed weight G+ - G-, so the
    product runs over the features, not over twice as many sources. Inside ``net.unchanged()`` (the phases of
    a training step) the product is kept: the nudged phases settle the same x and reuse the free phase's
    (x is compared bit for bit with a copy, so an x edited in between is recomputed; the copy goes into the
    last batch's buffer where the shapes agree). The result must not be modified. ``signed``: G+ - G- where the
    caller has it (the network's check forms it, ``LayeredNetwork.validate``).
    """
    kept = _kept_drive(net, x)
    if kept is not None:
        return kept
    drive = _product(x, _source_weights(net, signed))
    _keep_drive(net, x, drive)
    return drive


def _kept_drive(net: LayeredNetwork, x):
    """The block's kept input product where x is bit for bit the batch it was made for, else None."""
    fixed = net._fixed  # inside ``net.unchanged()``: the phases of a step settle the same x on the same network
    last = None if fixed is None else fixed.get("source_drive")
    if last is not None and kernels.same_bits(last[0], x):
        return last[1]  # read-only by contract: bcd adds to it out of place
    return None


def _source_weights(net: LayeredNetwork, signed=None):
    """The matrix the sources' product runs through: G+ - G- with input pairs (the caller's, or derived)."""
    w = net.weights[0]
    if signed is not None:
        return signed
    if net.input_pairs:
        n = net.n_features
        return net.derived("source_weights", lambda: w[:n] - w[n:])
    return w


def _keep_drive(net: LayeredNetwork, x, drive) -> None:
    """Inside a block, keeps ``drive`` (made read-only) with a copy of x for the phases that settle the same batch."""
    fixed = net._fixed
    if fixed is None:
        return
    last = fixed.get("source_drive")
    drive.setflags(write=False)  # compared by value, not identity: an x edited in place is not a hit
    if last is not None and last[0].shape == x.shape and last[0].dtype == x.dtype:
        np.copyto(last[0], x)  # the cache's own buffer: nothing else holds it
        kept = last[0]
    else:
        kept = np.array(x, copy=True)
    fixed["source_drive"] = (kept, drive)


INIT_NOT_FINITE = "init holds NaN/inf voltages"
OMEGA_MAX = 1.9  # projected SOR converges for any omega in (0, 2); stay clear of 2


def bcd(net: LayeredNetwork, x, y, beta, init, tol, max_sweeps, omega: float | None = None, totals=None,
        check_drive: bool = False, extra=None, signed=None, joined=None, start=None):
    """Returns (layers, sweeps, last_change, residual, omega). ``x`` holds the input features; ``residual``
    is a function giving the KCL residual per layer (computed on demand: it costs about a sweep); ``extra``:
    per layer None or a (batch, nodes) current added to its drive (the op-amps' departure from a V);
    ``omega`` is the over-relaxation factor the sweeps ended with (1: plain block coordinate descent); ``signed``:
    the signed input weights where the caller has them (``source_drive``); ``joined``: a dict into which the
    compiled sweeps put the layers side by side (``"voltages"``, (batch, free nodes), each chunk thread its own
    rows while they are in its cache) and whether all are finite (``"finite"``); left empty by the numpy path.
    ``start``: in place of ``init``, the (batch, free nodes) voltages to start from, unchecked (a C-contiguous float
    array): copied into the layers and checked for NaN/inf in one compiled pass, by the chunk threads for their
    rows where the sweeps are compiled; a NaN or inf raises InputError. With neither, the sweeps start from 0 V
    (the chunk threads zero their own rows where the sweeps are compiled).

    The source projection runs once per batch; the sweeps run on batch chunks in threads (``threads``): they
    are many small array operations that numpy runs without the GIL, and one thread cannot keep both cores
    busy with them. A batch in one chunk has its product from a BLAS that uses every core; a split one has each
    chunk thread make its rows of the product before its sweeps (one round of the pool, ``FUSED_PRODUCT``). Each layer's update is its two GEMMs, written
    into buffers kept for the solve, then one compiled pass over the layer (``DiodeModel.layer_update``,
    ``circuits/kernels.py``: drive, node solve, over-relaxation, projection and stopping test together);
    layers without a kernel (piecewise-linear diodes, clamped output pairs under a nudge) and installs
    without numba take the numpy path, which gives the same equilibrium to the tolerance.

    Where a layer's energy is quadratic on a box (linear nodes, ideal diodes: ``DiodeModel.box``),
    the sweeps are projected SOR: each layer moves omega times its exact block step and is projected
    back on its box, which lowers the energy for any omega in (0, 2). Shockley layers
    (``DiodeModel.relaxable``) take the relaxed step on the nodes where the model's curvature bound
    guarantees descent and the exact one elsewhere (``DiodeModel.relax``). A layered network is block
    tridiagonal, hence consistently ordered, so Young's theory gives the best factor from the plain
    sweeps' contraction rate rho: omega = 2 / (1 + sqrt(1 - rho)), with rate omega - 1 instead of rho
    (measured free phases at tol 1e-10 V: 1568-100-20 11 sweeps -> 9, 1568-256-256-20 30 -> 16,
    1568-64-64-64-20 74 -> 26). With ``omega`` None, rho is measured once the plain sweeps' contraction
    has settled; a number fixes omega (1.0: plain block coordinate descent); a network with a layer of
    neither kind (piecewise-linear diodes) always sweeps plainly. A warm start does not reuse the free phase's omega: its error starts in the
    fast modes, which plain sweeps remove at once and SOR only at the rate omega - 1 (a nudged
    1568-256-256-20 took 10 sweeps with it, 8 without, 7 plain); and the switch is made only where it
    saves two sweeps or more of those still to go (a small nudge has few left).

    Inside ``net.grounded(masks)`` the masked nodes of each sample are held at 0 V: their exact step is to 0 V in
    every kernel and in the numpy path alike (``kernels.grounded_box_update`` for box layers), so they neither move
    nor hold up the stopping test, and their residual is the switch's current (reported as 0).
    """
    B = x.shape[0]
    nudged = beta != 0.0 and y is not None
    omega_arg = omega
    # What does not depend on x, y or the start: computed once per unchanged() block (the phases of a step), and
    # outside one reused from the network's last call where everything it is made from is the same bit for bit
    make = _setup if net._fixed is not None else _recalled_setup
    memo = None if net._scratch is None or net._fixed is not None else net._scratch.get("setups")
    before = None if memo is None else memo.get((nudged, float(beta) if nudged else 0.0))  # a bare call's kept set-up
    # (a block's +beta and -beta phases share theirs where it does not read beta: ``_setup_beta``)
    setup = net.derived(("bcd", nudged, _setup_beta(net, nudged, beta)),
                        lambda: make(net, node_conductance(net) if totals is None else totals, nudged, beta))
    totals, fwd, back, boxes, updates, bias_drive, all_boxes, compiled = setup
    L = len(totals)
    const = list(bias_drive)
    chunks = _chunks(B)
    kept = _kept_drive(net, x)
    # A new batch split over threads has its input product made by the chunk threads, each before its sweeps:
    # one round of the pool instead of two (each round trip costs about 0.1 ms). The same products, rows by rows.
    fused = (FUSED_PRODUCT and kept is None and len(chunks) > 1 and compiled is not None
             and not any(e is not None for e in (extra or [])))
    if fused:
        w = _source_weights(net, signed)
        drive = np.empty((B, w.shape[1]), dtype=np.result_type(x, w))
        bias0, own = const[0], net._fixed is None  # own: nothing keeps the product, so the bias goes in in place
        unchecked = []  # chunks whose drive holds NaN/inf
    else:
        # NaN/inf in x (0 x inf) reach the drive: BLAS raises no floating-point warning, adding the finite bias
        # drive cannot make inf - inf, and the check is a compiled pass (no np.errstate, about 6 us a call)
        drive = kept if kept is not None else source_drive(net, x, signed)
        # this solve's own product takes the bias in place; a block's kept one is read-only: the sum is new
        const[0] = total = drive if drive.flags.writeable else np.empty(drive.shape)
        finite = kernels.add_row(total, drive, bias_drive[0])  # one pass: the sum and its check for NaN/inf
        if check_drive and kept is None and not finite:  # x was checked for its shape only
            # (``solver._solve_layered``); a kept product was checked by the phase that made it, on the same x
            net.check_inputs(x)  # raises naming the first NaN/inf of x; finite inputs go on, as they did before
    for c, e in enumerate(extra or []):
        if e is not None:
            const[c] = const[c] + e
    masks = _masks(net, B)
    if compiled is not None and masks is not None and any(
            m is not None and kind != kernels.BOX for m, kind in zip(masks, compiled[6])):  # (the layers' kinds)
        compiled = None  # the compiled loop grounds nodes in box layers only: the per-layer loop grounds the others
    split = start is not None and compiled is not None  # each chunk thread copies and checks its rows of start
    zeroed = init is None and start is None and compiled is not None  # each chunk thread zeroes its rows
    if split or zeroed:
        layers = [np.empty((B, n)) for n in net.free_sizes]
    elif start is not None:
        layers, finite = kernels.split_finite(start, net.free_sizes)
        if not finite:
            raise InputError(INIT_NOT_FINITE)
    elif init is None:
        layers = [np.zeros((B, n)) for n in net.free_sizes]
    else:
        layers = [np.array(v, dtype=float, order="C", copy=True) for v in init]  # C: the kernels' own layout
    estimate = boxes is not None and omega is None
    omega = 1.0 if boxes is None or omega is None else float(omega)
    # Box layers take T/S from matrices with 1/S folded in (one array pass less per layer and sweep).
    scaled = _scaled(totals, const, fwd, back) if all_boxes and not any(updates) else None
    ops = (net, totals, fwd, back, nudged, beta, tol, max_sweeps, boxes, omega, estimate, updates)

    if compiled is not None:
        # Each chunk's kernel arguments are made here, before the round: a chunk thread then runs its product (a
        # split batch's), one compiled pass adding the bias drive and checking it, and the compiled sweeps, and
        # takes the GIL three times, not once per line of Python (two threads waiting on each other's Python
        # cost each a wake-up, tens of microseconds on a VM).
        prepared = {}
        out = pred = kernels.EMPTY
        joined_ok, started = [], []  # per chunk: its rows of the voltages finite; its rows of start finite
        if joined is not None:  # the layers joined, and the pair readout, by each chunk's kernel for its rows
            out = np.empty((B, sum(v.shape[1] for v in layers)))
            if net.readout == "pairs":
                pred = np.empty((B, layers[-1].shape[1] // 2))
        mode = 2 if split else 1 if zeroed else 0
        for lo, hi in chunks:
            if hi - lo == B:  # one chunk: the whole arrays (slicing each costs a view)
                ks, ms, ls, ys = list(const), masks, layers, y
            else:
                ks = [k[lo:hi] if k.ndim == 2 else k for k in const]
                ms = None if masks is None else [None if m is None else m[lo:hi] for m in masks]
                ls, ys = [v[lo:hi] for v in layers], None if y is None else y[lo:hi]
            if fused:  # the bias goes into this solve's own product in place; a kept product stays as made
                ks[0] = drive[lo:hi] if own else np.empty((hi - lo, drive.shape[1]))
            prepared[lo] = (hi, ks[0], _kernel_args(compiled, ops, ks, ls, ys, ms))
        if (PLANS and joined is not None and net._fixed is None and masks is None and not fused and mode
                and B < 2 * threads.MIN_CHUNK and not any(e is not None for e in (extra or []))
                and (signed is not None or not net.input_pairs)
                and before is not None and setup is before[1]):  # a bare call on unchanged conductances (its set-up
            # recalled: a network edited between calls makes none): kept for the next one like it
            _keep_plan(net, setup, prepared[0][2], const, nudged, beta, tol, max_sweeps, omega_arg, mode, check_drive)

        def run(bounds):
            hi, k0, args = prepared[bounds[0]]
            lo = bounds[0]
            if fused:  # this chunk's rows of the input product (``_product``'s split), then its drive
                d = np.dot(x[lo:hi], w, out=drive[lo:hi])
                if not kernels.add_row(k0, d, bias0) and check_drive:
                    unchecked.append(lo)
            # the start, the sweeps, the join and the readout: one compiled call (``kernels.chunk_sweeps``)
            sweeps, change, om, ok_start, ok = kernels.chunk_sweeps(mode, start[lo:hi] if split else kernels.EMPTY,
                                                                    out[lo:hi], pred[lo:hi], *args)
            started.append(ok_start)
            joined_ok.append(ok)
            return args[0], int(sweeps), float(change), float(om)
    else:
        run = _python_run(ops, const, layers, y, masks, scaled)

    results = _over_chunks(B, run, chunks)
    if compiled is not None and not all(started):
        raise InputError(INIT_NOT_FINITE)
    if compiled is not None and joined is not None:
        joined["voltages"], joined["finite"] = out, all(joined_ok)
        if pred is not kernels.EMPTY:
            joined["prediction"] = pred
    if fused:
        if unchecked:
            net.check_inputs(x)  # raises naming the first NaN/inf of x; finite inputs go on, as they did before
        if own:
            const[0] = drive  # the bias is in it
        else:
            _keep_drive(net, x, drive)
    if compiled is None:  # the numpy path's sweeps make new arrays per chunk
        layers = results[0][0] if len(results) == 1 else [np.concatenate([r[0][c] for r in results])
                                                         for c in range(L)]
    # else: the compiled sweeps wrote each chunk's rows in place, in the whole layers' arrays
    sweeps = max(r[1] for r in results)
    change = max(r[2] for r in results)
    omega = max(r[3] for r in results)

    def residual():
        if fused and not own and const[0] is bias0:  # the kept product and the bias, summed when first read
            const[0] = bias0 + drive
        return _residual(net, totals, const, fwd, back, layers, y, beta, masks)

    return layers, sweeps, change, residual, omega


def _python_run(ops, const, layers, y, masks, scaled):
    """The function a chunk thread runs where the sweeps are not compiled: the per-layer Python loop (``_sweeps``)
    on its rows, which returns new arrays."""
    def run(bounds):
        lo, hi = bounds
        part = [v[lo:hi] for v in layers]
        cut = lambda ks: [k[lo:hi] if np.ndim(k) == 2 else k for k in ks]  # noqa: E731  (per-sample drives)
        ms = None if masks is None else [None if m is None else m[lo:hi] for m in masks]
        sc = None if scaled is None else (cut(scaled[0]), scaled[1], scaled[2])
        return _sweeps(ops, cut(const), part, None if y is None else y[lo:hi], sc, ms)

    return run


def _masks(net: LayeredNetwork, B: int):
    """Per free layer the (B, n) 0/1 array of ``net.grounded()`` (None: free), or None outside such a block."""
    masks = net._grounded
    if masks is None:
        return None
    rows = next(m.shape[0] for m in masks if m is not None)
    if rows != B:
        raise InputError(f"this solve settles {B} samples but the grounded nodes are set for {rows}; settle the "
                         f"batch the masks were drawn for, or leave the grounded() block")
    return list(masks) + [None]  # the output layer is never grounded


COMPILED_SWEEPS = True  # False: every network takes the per-layer Python loop (tests compare the two)
FUSED_PRODUCT = True  # False: a split batch's input product is made in a round of its own (tests compare the two)


def _compiled_layers(updates, boxes, fwd, back, scaled):
    """What ``kernels.box_sweeps`` needs beyond the drives, where every layer has a box update, is a nudged linear
    output pair layer or has a compiled update the loop takes (Shockley clamps: ``sweep`` on the update,
    ``ShockleyDiode.layer_update``): the networks whose sweeps are all GEMMs and one compiled pass per layer; else
    None: (per layer a_c W_c and the backward matrix as C arrays, S, 1/S, lo, hi, its kind (``kernels.BOX``,
    ``PAIRS``, ``SHOCKLEY``), per layer 1 where its backward matrix is W_c^T / a_c (small: ``_amplifier_matrices``) and
    0 where it is W_c / a_c, read transposed, the diode parameters of each Shockley layer, a dict in which
    ``_kernel_args`` keeps the row drives made whole)."""
    if not COMPILED_SWEEPS or boxes is None or not updates:
        return None
    lo, hi, kinds, diodes = [], [], [], []
    for u in updates:
        if u is None:
            return None
        sweep = getattr(u[0], "sweep", None)  # (its rails, its parameters)
        if u[0] == "pairs":
            kind, box, diode = kernels.PAIRS, (-np.inf, np.inf), _NO_DIODE
        elif hasattr(u[0], "box"):
            kind, box, diode = kernels.BOX, u[0].box, _NO_DIODE
        elif sweep is not None:
            kind, box, diode = kernels.SHOCKLEY, sweep[:2], sweep[2]
        else:
            return None
        kinds.append(kind), lo.append(box[0]), hi.append(box[1]), diodes.append(diode)
    dummy = np.zeros((1, 1))
    S = tuple(u[1] for u in updates)  # contiguous float arrays (``_layer_updates``)
    inv_s = tuple(s if u[2] is None else u[2] for s, u in zip(S, updates))
    flat = [0] + [int(b.flags.c_contiguous) for b in back[1:]]  # the small ones, copied contiguous
    backs = tuple(b if f else s for b, s, f in zip(back[1:], scaled[1:], flat[1:]))
    return ((dummy,) + tuple(fwd[1:]), (dummy,) + backs, S, inv_s, np.array(lo), np.array(hi),
            np.array(kinds, dtype=np.int64), np.array(flat, dtype=np.int64), np.array(diodes, dtype=float), {})
    # {}: the row drives made whole, per layer and batch size


_NO_DIODE = (0.0,) * 6  # box_sweeps' diode parameters of a layer that is not a Shockley one (never read)
_FREE = np.ones((1, 1))  # what box_sweeps is passed for a layer without grounded nodes
_NO_TARGETS = np.zeros((1, 1))  # its targets where no layer is nudged output pairs (never read)
_UNMASKED = {}


def _unmasked(L: int):
    """box_sweeps' mask flags and masks for L layers none of which has grounded nodes, made once per L (the kernel
    only reads them; left writable: a read-only array would be a second signature to compile)."""
    got = _UNMASKED.get(L)
    if got is None:
        got = _UNMASKED[L] = (np.zeros(L, dtype=np.int64), (_FREE,) * L)
    return got


def _kernel_args(compiled, ops, const, layers, y, masks=None) -> tuple:
    """``kernels.box_sweeps``' arguments for one chunk: ``_sweeps`` as one compiled call for the whole loop. ``const``
    per layer its constant drive: a (chunk, n) array, or a row, made whole here."""
    net, totals, fwd, back, nudged, beta, tol, max_sweeps, boxes, omega, estimate, updates = ops
    fwds, backs, S, inv_s, lo, hi, kinds, flat, diodes, whole = compiled
    L = len(layers)
    B = layers[0].shape[0]
    ks = []
    for c in range(L):
        k = const[c]
        if nudged and c == L - 1 and kinds[c] != kernels.PAIRS:
            k = k + beta * y
        if k.ndim == 1:  # a row drive: the biases', from this set-up (``_setup``), made whole once per batch size and
            # kept with it (the kernel only reads it)
            got = whole.get((c, B))
            if got is None:
                if len(whole) >= 4 * L:  # many batch sizes: the kept ones go
                    whole.clear()
                got = whole[(c, B)] = np.empty((B, k.shape[0]))
                got[...] = k
            k = got
        elif not (k.flags.c_contiguous and k.flags.writeable and k.dtype == float):
            k = np.array(k, dtype=float, order="C")
        ks.append(k)
    yy = np.ascontiguousarray(y, dtype=float) if (nudged and kinds[-1] == kernels.PAIRS) else _NO_TARGETS
    if masks is None:  # no grounded nodes: the same flags and placeholders every call
        masked, ms = _unmasked(L)
    else:
        masked = np.array([m is not None for m in masks], dtype=np.int64)
        ms = tuple(_FREE if m is None else m for m in masks)
    return (tuple(layers), tuple(ks), fwds, backs, inv_s, S, lo, hi, kinds, flat, diodes, yy, float(beta), float(tol),
            int(max_sweeps), float(omega), bool(estimate), OMEGA_MAX, ms, masked)


PLANS = True  # False: bare calls keep no plan (tests compare the two)
PLANS_KEPT = 8  # plans kept per network (batch size, phase, settings)


class Plan:
    """What a bare call of a network needs beyond its x, y and start, kept from the last such call for the next one
    with the same batch size, phase and settings (``_keep_plan``; used by ``solver._planned``): the network's structure
    it was made for (``stamp``: the scalars by value, the clamps, amplifier and conductance arrays by identity,
    ``refs`` keeping them alive so that no other object takes their ids), the numbers its set-up was made from
    (``kept``: node totals, biases, weights between free layers, compared bit for bit by ``kernels.plan_check``), the
    shapes, and the compiled sweeps' arguments that do not depend on x, y or the start."""

    __slots__ = ("stamp", "refs", "kept", "rows", "cols", "split", "signed", "signed_buffer", "on_drive", "features",
                 "targets_n", "n_free", "widths", "bias0", "ks", "nudge_last", "targets", "head", "tail", "mode",
                 "pairs_out", "setup")


def plan_stamp(net: LayeredNetwork) -> tuple:
    """The structure a plan holds for: what the network's check and its set-up read besides the conductances'
    values (sizes, gains, bias voltage, readout, flags, each immutable (``_keep_plan``): by identity, else by
    value; the amplifier, clamps and arrays by identity), and the settings the solver reads."""
    return (net.sizes, net.gains, net.bias_voltage, net.readout, net.input_pairs, net.hidden_pairs, id(net.amplifier),
            *map(id, net.neurons), None, *map(id, net.weights), None, *map(id, net.biases), kernels.available(),
            COMPILED_SWEEPS, SMALL_MATRIX)


def _keep_plan(net, setup, args, const, nudged, beta, tol, max_sweeps, omega, mode, on_drive) -> None:
    """Keeps the plan of this bare call (one chunk, compiled sweeps, a recalled set-up; ``args``: its
    ``_kernel_args``) where the network allows one: ideal amplifiers, scalars that cannot change in place. Plans of another
    structure go (they could not serve again, and they hold old arrays)."""
    # (its set-up was recalled: the memo kept it, so its clamps are frozen and its weights between free layers within
    # SETUP_MEMO_ENTRIES, ``_recalled_setup``)
    if (not net.amplifier.ideal
            or not (type(net.sizes) is tuple and type(net.gains) is tuple and isinstance(net.bias_voltage, float)
                    and type(net.readout) is str and isinstance(net.input_pairs, (bool, np.bool_))
                    and isinstance(net.hidden_pairs, (bool, np.bool_)))):  # the stamp's scalars cannot change in place
        return
    scratch = net._scratch
    if scratch is None:
        scratch = net._scratch = {}
    plans = scratch.get("plans")
    stamp = plan_stamp(net)
    if plans is None:
        plans = scratch["plans"] = {}
    for key in [k for k, p in list(plans.items()) if p.stamp != stamp]:
        plans.pop(key, None)
    plan = Plan()
    plan.stamp, plan.refs = stamp, (net.amplifier, tuple(net.neurons), tuple(net.weights), tuple(net.biases))
    totals = setup[0]
    plan.kept = np.concatenate([*totals, *(b.reshape(-1) for b in net.biases),
                                *(w.reshape(-1) for w in net.weights[1:])])
    plan.rows, plan.cols = tuple(w.shape[0] for w in net.weights), tuple(w.shape[1] for w in net.weights)
    plan.split = net.pair_split()
    plan.signed, plan.on_drive, plan.features, plan.targets_n = net.input_pairs, on_drive, net.n_features, net.n_targets
    # the check's signed weights: the same array while the structure (the stamp) is the same
    plan.signed_buffer = net._signed_buffer(net.weights[0]) if net.input_pairs else kernels.EMPTY
    plan.widths = tuple(v.shape[1] for v in args[0])
    plan.n_free = sum(plan.widths)
    plan.bias0, plan.setup = setup[5][0], setup
    pairs_last = args[8][-1] == kernels.PAIRS  # the kinds of layer
    plan.nudge_last = nudged and not pairs_last
    ks = list(args[1][1:])
    if plan.nudge_last:
        if not ks:  # no hidden layer: the nudge goes into the input product with its bias, in that order
            return
        ks[-1] = const[-1]  # the row: beta y is added per call, as ``_kernel_args`` does
    plan.ks, plan.targets = tuple(ks), bool(nudged and pairs_last)
    plan.head, plan.tail, plan.mode = args[2:11], args[12:], mode  # (the targets between them)
    plan.pairs_out = net.readout == "pairs"
    if len(plans) >= PLANS_KEPT:
        for oldest in list(plans)[:1]:
            plans.pop(oldest, None)
    plans[plan_key(args[0][0].shape[0], beta, nudged, tol, max_sweeps, omega, mode)] = plan


def plan_key(B, beta, nudged, tol, max_iter, omega, mode) -> tuple:
    """The call a plan serves: batch size, beta, whether nudged, the solve's settings (the sweep count's type too: a
    plan skips the checks of the arguments, which its making call passed), cold (1) or warm (2) start."""
    return B, beta, nudged, tol, max_iter, type(max_iter), omega, mode


SETUP_MEMO_ENTRIES = 65536  # the most entries of the conductances a set-up is compared by (beyond: made anew)
SETUP_MEMO_PHASES = 4  # set-ups kept per network, one per phase (free; nudged at each beta)


def _recalled_setup(net: LayeredNetwork, totals, nudged: bool, beta: float):
    """``_setup`` for a call outside ``unchanged()``: the network's last set-up of the phase where everything it reads
    is the same (the node totals, the biases and the weights between free layers bit for bit; the gains, bias voltage,
    readout and flags by value; the neuron clamps by identity, each frozen with scalar fields, so they
    cannot have changed), else made and kept. A bare call's set-up costs about 40 us, a fifth of a batch of one's
    solve and a twelfth of a batch of 64's (``benchmarks/solve_parts.py``); comparing costs a few. Networks whose
    weights between free layers are large (``SETUP_MEMO_ENTRIES``), or whose clamps could change in place, make it
    anew: there the set-up is a small share of a solve, or a memo could be stale."""
    key = _setup_key(net, totals, nudged, beta)
    scratch = net._scratch
    if scratch is None:
        scratch = net._scratch = {}
    memo = scratch.get("setups")
    if memo is None:
        memo = scratch["setups"] = {}
    phase = key[1][:2] if key is not None else None  # one set-up kept per phase: free and nudged calls alternate
    kept = memo.get(phase)
    if key is not None and kept is not None and _same_setup_key(kept[0], key):
        return kept[1]
    made = _setup(net, totals, nudged, beta)
    if key is not None and all(_frozen_clamp(n) for n in net.neurons):  # checked once, when kept: the same
        # objects (identity) are the same clamps
        if len(memo) >= SETUP_MEMO_PHASES and phase not in memo:
            for oldest in list(memo)[:1]:  # (list(): one step under the GIL, as another thread may edit it)
                memo.pop(oldest, None)
        memo[phase] = (key, made)
    return made


def _setup_key(net: LayeredNetwork, totals, nudged: bool, beta: float):
    """What ``_setup`` reads, in a form compared cheaply (``_same_setup_key``), or None where it cannot be."""
    weights = net.weights[1:]
    if sum(w.size for w in weights) > SETUP_MEMO_ENTRIES:
        return None
    arrays = b"".join([a.tobytes() for group in (totals, net.biases, weights) for a in group])
    shapes = tuple(t.shape for t in totals) + tuple(b.shape for b in net.biases) + tuple(w.shape for w in weights)
    return (tuple(net.neurons), (nudged, float(beta) if nudged else 0.0, net.gains, net.bias_voltage, net.readout,
                                 net.hidden_pairs, net.input_pairs, net.sizes, kernels.available(),
                                 COMPILED_SWEEPS, SMALL_MATRIX, shapes, arrays))


def _same_setup_key(a, b) -> bool:
    """The clamps compared by identity (a clamp's == compares its fields, which a subclass may give arrays), the
    rest by value."""
    return len(a[0]) == len(b[0]) and all(x is y for x, y in zip(a[0], b[0])) and a[1] == b[1]


def _frozen_clamp(clamp) -> bool:
    """Whether a clamp (None: linear nodes) cannot change in place: a frozen dataclass, its diode too, whose fields
    hold scalars or tuples of them (an array field could be written in place)."""
    if clamp is None:
        return True
    for obj in (clamp, clamp.diode):
        params = getattr(type(obj), "__dataclass_params__", None)
        if params is None or not params.frozen:
            return False
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name != "diode" and not (isinstance(value, _SCALARS) or isinstance(value, tuple) and all(
                    isinstance(v, _SCALARS) for v in value)):
                return False
    return True


_SCALARS = (int, float, str, bool, type(None))


def _setup(net: LayeredNetwork, totals, nudged: bool, beta: float):
    """bcd's set-up that depends on the conductances and the phase only (not on x, y or the start):
    (totals, forward and backward matrices, boxes, compiled layer updates, the bias sources' drive per layer,
    whether every layer is a box)."""
    fwd, back, scaled = net.derived("amplifier_matrices", lambda: _amplifier_matrices(net))
    bias_drive = net.derived("bias_drive", lambda: _bias_drive(net))  # (the phases share it: read, never written)
    boxes = _boxes(net, nudged)
    updates = _layer_updates(net, totals, nudged, beta)
    all_boxes = boxes is not None and all(isinstance(b, tuple) for b in boxes)
    compiled = _compiled_layers(updates, boxes, fwd, back, scaled)
    return totals, fwd, back, boxes, updates, bias_drive, all_boxes, compiled


def _bias_drive(net: LayeredNetwork) -> list:
    """Per connection the bias sources' drive of the layer it feeds, a row: vb (G_b+ - G_b-)."""
    vb = net.bias_voltage
    return [vb * (net.biases[c][0] - net.biases[c][1]) for c in range(net.n_connections)]


def _setup_beta(net: LayeredNetwork, nudged: bool, beta: float) -> float:
    """The beta a phase's set-up reads: the output nodes' conductance S + beta (readout "nodes") under a nudge;
    output pairs take beta per call (``_kernel_args``, ``_fused``), so their set-up is the same at every beta."""
    return float(beta) if nudged and net.readout != "pairs" else 0.0


def _amplifier_matrices(net: LayeredNetwork):
    """Per connection after the first, the forward matrix a W, the backward one W^T / a and W / a itself (None for
    c = 0; the compiled sweep loop reads the backward matrix where it is contiguous, else W / a transposed).
    A large backward matrix is a transposed view (a transposed copy of a 1024 x 1024 matrix costs 3.3 ms,
    more than a solve's products at batch 64, and BLAS reads either order at about the same speed there); a
    small one is copied contiguous, which its GEMMs read faster (64 x 20 by 20 x 100: 8.0 -> 6.1 us, the copy
    1 us; ``benchmarks/solver.py``'s bound times them contiguous too)."""
    fwd, back, scaled = [None], [None], [None]
    for c in range(1, net.n_connections):
        w = net.signed_weights(c)
        fwd.append(net.gains[c] * w)
        scaled.append(w / net.gains[c])  # W / a, C-contiguous: the compiled sweeps read a large one transposed
        b = scaled[-1].T
        back.append(np.ascontiguousarray(b) if b.size <= SMALL_MATRIX else b)
    return fwd, back, scaled


SMALL_MATRIX = 16384  # entries of a backward matrix copied contiguous (its copy costs about one small GEMM)


def _layer_updates(net: LayeredNetwork, totals, nudged: bool, beta: float):
    """Per layer (update, S, 1/S) with its compiled update (``DiodeModel.layer_update``; linear nodes: the
    unbounded box; linear output pairs of a nudged phase: "pairs", their 2x2 solves), or None where the
    numpy path serves: numba missing, a model without a kernel, or clamped output pairs of a nudged phase
    (solved half by half). A nudged output layer of single nodes is a layer of conductance S + beta driven
    by T + beta y (``_fused``)."""
    if not kernels.available():
        return [None] * net.n_connections
    out = []
    for c, clamp in enumerate(net.neurons):
        last_nudged = nudged and c == net.n_connections - 1
        if last_nudged and net.readout != "nodes":
            # linear output pairs: their 2x2 solves in one pass; clamped pairs take the numpy path
            out.append(("pairs", np.ascontiguousarray(totals[c], dtype=float), None) if clamp is None else None)
            continue
        update = kernels.box_layer(-np.inf, np.inf) if clamp is None else clamp.diode.layer_update(clamp)
        S = np.ascontiguousarray(totals[c] + beta if last_nudged else totals[c], dtype=float)
        out.append(None if update is None else (update, S, 1.0 / S))
    return out


def _fused(ops, const, layers, y, masks=None):
    """Per layer a function (layers, omega, tol) -> step running its compiled update, or None. Each keeps
    buffers for its GEMMs (the drive from the layer above and from the one below), written in place. A layer with
    grounded nodes (``masks``) has one where it is a box layer (``kernels.grounded_box_update``), else None."""
    net, totals, fwd, back, nudged, beta = ops[:6]
    updates = ops[-1]
    L = len(layers)
    B = layers[0].shape[0]
    steps = []
    for c, spec in enumerate(updates):
        m = None if masks is None else masks[c]
        if spec is None or (m is not None and not hasattr(spec[0], "box")):
            steps.append(None)
            continue
        update, S, inv_s = spec
        n = layers[c].shape[1]
        k = const[c]
        products = ([(c + 1, back[c + 1])] if c + 1 < L else []) + ([(c - 1, fwd[c])] if c > 0 else [])
        bufs = [np.empty((B, n)) for _ in products]
        if update == "pairs":
            steps.append(_pairs_step(c, S, np.broadcast_to(k, (B, n)), products, bufs, beta, y))
            continue
        if nudged and c == L - 1:
            k = k + beta * y
        k = k if np.ndim(k) == 2 else np.broadcast_to(k, (B, n))
        if m is not None:
            steps.append(_grounded_step(c, update.box, inv_s, k, products, bufs, m))
            continue
        steps.append(_box_step(c, update.box, inv_s, k, products, bufs) if hasattr(update, "box") else
                     _update_step(c, update, S, inv_s, k, products, bufs))
    return steps


def _grounded_step(c, box, inv_s, k, products, bufs, m):
    """A box layer's step with some nodes held at 0 V (``kernels.grounded_box_update``)."""
    lo, hi = box

    def step(layers, omega, tol):
        t = [np.matmul(layers[src], w, out=buf) for (src, w), buf in zip(products, bufs)]
        ta = t[0] if t else k
        return kernels.grounded_box_update(ta, t[-1] if t else k, k, layers[c], len(t), inv_s, lo, hi, omega, m)

    return step


def _update_step(c, update, S, inv_s, k, products, bufs):
    def step(layers, omega, tol):
        t = [np.matmul(layers[src], w, out=buf) for (src, w), buf in zip(products, bufs)]
        ta = t[0] if t else k
        return update(ta, t[-1] if t else k, k, layers[c], len(t), S, inv_s, omega, tol)

    return step


def _box_step(c, box, inv_s, k, products, bufs):
    """A box layer's step, calling its GEMMs and ``kernels.box_update`` directly: at a batch of 64 the Python
    around them is a fifth of a sweep."""
    lo, hi = box
    update, matmul = kernels.box_update, np.matmul
    if len(products) == 2:
        (sa, wa), (sb, wb) = products
        ba, bb = bufs

        def step(layers, omega, tol):
            matmul(layers[sa], wa, out=ba)
            matmul(layers[sb], wb, out=bb)
            return update(ba, bb, k, layers[c], 2, inv_s, lo, hi, omega)
    elif len(products) == 1:
        (sa, wa), = products
        ba, = bufs

        def step(layers, omega, tol):
            matmul(layers[sa], wa, out=ba)
            return update(ba, ba, k, layers[c], 1, inv_s, lo, hi, omega)
    else:
        def step(layers, omega, tol):
            return update(k, k, k, layers[c], 0, inv_s, lo, hi, omega)
    return step


def _pairs_step(c, S, k, products, bufs, beta, y):
    y = np.ascontiguousarray(y, dtype=float)
    zero = np.zeros_like(k) if not products else None

    beta = float(beta)
    update, matmul = kernels.pairs_update, np.matmul
    if len(products) == 1:  # the outputs' drive from the last hidden layer
        (src, w), = products
        buf, = bufs

        def step(layers, omega, tol):
            return update(matmul(layers[src], w, out=buf), k, layers[c], S, beta, y, omega)

        return step

    def step(layers, omega, tol):
        t = [np.matmul(layers[src], w, out=buf) for (src, w), buf in zip(products, bufs)]
        return update(t[0] if t else zero, k, layers[c], S, beta, y, omega)

    return step


def _boxes(net: LayeredNetwork, nudged: bool):
    """Per layer how its nodes are over-relaxed: the box they live in ((-inf, inf) for linear nodes), or
    the clamp itself for a diode model that bounds its own relaxed step (``DiodeModel.relaxable``: Shockley).
    None when some layer's step is not an exact minimisation of a convex node energy the model can bound
    (piecewise diodes; clamped output pairs under a nudge, which are solved half by half): those networks
    are swept without over-relaxation."""
    boxes = []
    for c, clamp in enumerate(net.neurons):
        box = (-np.inf, np.inf) if clamp is None else clamp.box
        if box is None and clamp.diode.relaxable:
            box = clamp
        if box is None or (nudged and c == net.n_connections - 1 and net.readout == "pairs" and clamp is not None):
            return None
        boxes.append(box)
    return boxes


def _scaled(totals, const, fwd, back):
    """(const, fwd, back) with every term of layer c's drive divided by its nodes' total conductance S_c."""
    inv = [1.0 / s for s in totals]
    L = len(totals)
    return ([const[c] * inv[c] for c in range(L)], [None] + [fwd[c] * inv[c] for c in range(1, L)],
            [None] + [back[c] * inv[c - 1] for c in range(1, L)])


def _box_solve(scaled, layers, c, box):
    """Exact minimiser of a box layer given its neighbours: T/S (from the scaled matrices) clipped to the box."""
    return _clip(_drive(*scaled, layers, c), box)


def _clip(v, box):
    """v projected on the box (lo, hi) in place; a box of (-inf, inf) leaves it untouched."""
    lo, hi = box
    if np.isfinite(lo) or np.isfinite(hi):
        np.clip(v, lo, hi, out=v)
    return v


def _product(x, w):
    """x @ w, split over the solver's chunk threads as its sweeps are (``threads``: each thread's BLAS gets its
    share of the cores), so a large batch's costliest product neither idles a core nor leaves BLAS threads
    spinning beside the sweeps. ``np.dot``, not the matmul ufunc: the same BLAS call, without the floating-point
    status check after it, which warned on the NaN that inf inputs make (the solver checks the drive itself)."""
    if len(_chunks(len(x))) == 1:
        return np.dot(x, w)
    out = np.empty((len(x), w.shape[1]), dtype=np.result_type(x, w))
    _over_chunks(len(x), lambda b: np.dot(x[b[0]:b[1]], w, out=out[b[0]:b[1]]))
    return out


def _over_chunks(B, fn, chunks=None) -> list:
    """[fn((lo, hi)) for each chunk of a batch of B rows] (``threads.run``: the first chunk in this thread, each
    thread's BLAS given its share of the cores); ``chunks``: the caller's ``_chunks(B)``."""
    return threads.run(_chunks(B) if chunks is None else chunks, fn)


def _chunks(B):
    """(lo, hi) row ranges of the chunk threads: as even as whole rows allow (integer arithmetic: numpy's
    linspace cost 12 us a call, a tenth of a small batch's sweeps)."""
    return threads.ranges(B, threads.chunks(B))


def _drive(const, fwd, back, layers, c):
    """T of layer c+1: sources/previous layer forward, next layer backward (gains folded in). A fresh
    array, summed in place (a layer-sized temporary per term costs page faults in every sweep)."""
    if c + 1 < len(layers):
        t = layers[c + 1] @ back[c + 1]
        if c > 0:
            t += layers[c - 1] @ fwd[c]
    elif c > 0:
        t = layers[c - 1] @ fwd[c]
    else:
        return const[c].copy()
    t += const[c]
    return t


def _sweeps(ops, const, layers, y, scaled=None, masks=None):
    net, totals, fwd, back, nudged, beta, tol, max_sweeps, boxes, omega, estimate, _ = ops
    L = len(layers)
    fused = _fused(ops, const, layers, y, masks)
    masks = masks or [None] * L
    change, sweep, rate = np.inf, 0, -1.0  # rate: the last measured contraction (-1: none yet)
    for sweep in range(1, max_sweeps + 1):
        inner_tol = kernels.inner_tol(change)  # inexact early sweeps (the compiled loop's rule)
        last, change = change, 0.0
        for c in range(L):
            if fused[c] is not None:  # one compiled pass over the layer, in place
                step = fused[c](layers, omega, inner_tol)
                if not step <= change:  # a NaN step is kept (max() would drop it)
                    change = step
                continue
            old = layers[c]
            if c == L - 1 and nudged:
                new = _solve_output_nudged(net, totals[c], _drive(const, fwd, back, layers, c), old, y, beta,
                                           inner_tol)
            elif scaled is not None:
                new = _box_solve(scaled, layers, c, boxes[c])
            else:
                new = solve_nodes(net.neurons[c], totals[c], _drive(const, fwd, back, layers, c), old, inner_tol)
            if masks[c] is not None:  # grounded nodes: their exact step is to 0 V
                new = new * masks[c]
            if omega != 1.0 and not isinstance(boxes[c], tuple):  # a model that bounds its own relaxed step
                # (its resistive S alone is a safe curvature floor: a nudge only adds beta to it)
                new = boxes[c].diode.relax(boxes[c], totals[c], old, new, omega)
                if masks[c] is not None:
                    new *= masks[c]
                change = max(change, float(np.abs(new - old).max(initial=0.0)))
                layers[c] = new
                continue
            d = np.subtract(new, old, out=old)  # old is ours (a copy or a fresh result): reuse its memory
            step = max(float(d.max(initial=0.0)), -float(d.min(initial=0.0)))
            if omega != 1.0:
                d *= omega - 1.0
                new += d  # old + omega * (exact block step)
                _clip(new, boxes[c])
                step *= omega
            change = max(change, step)
            layers[c] = new
        if change <= tol or change != change:  # converged, or NaN: the caller's check names the sample
            break
        # over-relaxation: measured from the plain sweeps' contraction (``kernels.sor_rule``, the compiled loop's too)
        omega, rate, estimate, _ = kernels.sor_rule(change, last, rate, omega, estimate, tol, OMEGA_MAX)
    return layers, sweep, change, omega


def _residual(net, totals, const, fwd, back, layers, y, beta, masks=None):
    """KCL residual (amperes) per layer, reusing the source drive computed for the sweeps; a grounded node's is 0
    (its switch carries whatever current its neighbours send)."""
    L = len(layers)
    res = []
    for c in range(L):
        r = totals[c] * layers[c] - _drive(const, fwd, back, layers, c)
        if c == L - 1 and beta != 0.0 and y is not None:
            r = r - nudge_current(net, layers[c], y, beta)
        r = clamp_residual(net.neurons[c], layers[c], r)
        res.append(r if masks is None or masks[c] is None else r * masks[c])
    return res


def _solve_output_nudged(net, S, T, old, y, beta, tol):
    clamp = net.neurons[-1]
    if net.readout == "nodes":
        return solve_nodes(clamp, S + beta, T + beta * y, old, tol)
    h = S.shape[0] // 2
    s1, s2, t1, t2 = S[:h] + beta, S[h:] + beta, T[:, :h], T[:, h:]
    if clamp is None:
        # The pair cost couples V+ and V- of one pair only: solve each 2x2 system exactly.
        r1, r2 = t1 + beta * y, t2 - beta * y
        det = s1 * s2 - beta**2
        return np.hstack([(s2 * r1 + beta * r2) / det, (beta * r1 + s1 * r2) / det])
    # With clamped outputs, the + half and the - half are each separable given the other.
    vn = old[:, h:]
    vp = solve_nodes(clamp, s1, t1 + beta * (vn + y), old[:, :h], tol)
    vn = solve_nodes(clamp, s2, t2 + beta * (vp - y), vn, tol)
    return np.hstack([vp, vn])
