"""Generic solver for arbitrary graphs: modified nodal analysis with scipy.sparse.

KCL at the free nodes reads  K V - D s + I_clamp(V) = 0  (s: source voltages). Amplified edges make K
non-symmetric but it stays a (scaled) M-matrix, which is what the two methods need:
- smooth or piecewise-linear diodes: damped Newton with step limiting (at most ``MAX_STEP`` volts per
  iteration, like SPICE's junction limiting) and backtracking on the residual norm;
- ideal diodes: the box-constrained QP solved by the primal-dual active-set method (Hintermueller,
  Ito & Kunisch 2003), which terminates in finitely many steps for M-matrices.
The batch is solved as one block-diagonal sparse system.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .errors import ConvergenceError, NetworkError
from .network import GraphNetwork, conductances

MAX_STEP = 0.1  # volts per Newton iteration at most
NONMONOTONE = 8  # residuals the line search compares with where op-amps make KCL piecewise smooth
STALL = 8  # Newton iterations without the step halving: the rounding floor of the solve


@dataclass
class CompiledGraph:
    free: list
    sources: list
    K: sp.csr_matrix  # (n_free, n_free) linear part of KCL
    D: sp.csr_matrix  # (n_free, n_sources) coupling to the sources
    R: sp.csr_matrix  # (n_targets, n_free) readout
    groups: list  # [(DiodeClamp, free indices)]
    kappa: np.ndarray  # energy weight per free node: diag(kappa) K is symmetric
    amps: "GraphAmplifiers | None" = None  # the op-amps, where the amplifier model is not ideal
    #: what solves of this compiled graph share (``_reduction``); it lives as long as the compiled graph: one
    #: solve, or one ``unchanged()`` block (the phases of a step)
    memo: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class GraphAmplifiers:
    """A graph's amplifiers as the writer builds them, one per (driver, gain): an op-amp drives every edge of its
    driver and gain. K holds them as ideal (a V_d); ``model.output`` gives the real output a V_d + s, and the shift
    s enters as a drive (``rhs``)."""

    model: object
    gain: np.ndarray  # (m,) nominal gains
    driver: np.ndarray  # (m,) index of each driver among the free nodes (or the sources, where ``driver_free`` is off)
    driver_free: np.ndarray  # (m,) bool
    Lf: sp.csr_matrix  # (m, n_free) the conductances each amplifier drives into free nodes
    Ls: sp.csr_matrix  # (m, n_sources) ... into source nodes
    offset: np.ndarray | None  # (m,) input offsets where the graph gives them (amp_offset), else None
    factor: np.ndarray | None  # (m,) loop-gain factors (amp_gain_factor), else None

    def __post_init__(self):
        self.load_g = np.asarray(self.Lf.sum(1)).ravel() + np.asarray(self.Ls.sum(1)).ravel()
        m, n = self.Lf.shape
        free = np.flatnonzero(self.driver_free)
        # Sd selects each amplifier's driver among the free nodes; Mx maps the shifts to their drive: s G into the
        # driven nodes, s G / a out of the driving node (the CCCS)
        self.Sd = sp.csr_matrix((np.ones(free.size), (free, self.driver[free])), shape=(m, n))
        back = sp.csr_matrix(((self.load_g / self.gain)[free], (free, self.driver[free])), shape=(m, n))
        self.Mx = (self.Lf - back).tocsr()

    def _terms(self, v, sources):
        vd = np.zeros((v.shape[0], self.gain.size))
        free = self.driver_free
        if free.any():
            vd[:, free] = v[:, self.driver[free]]
        if (~free).any():
            vd[:, ~free] = sources[:, self.driver[~free]]
        load_i = (self.Lf @ v.T).T + (self.Ls @ sources.T).T
        return vd, np.asarray(load_i)

    def _per_gain(self, method, vd, load_i):
        out = np.empty((2,) + vd.shape)
        for a in np.unique(self.gain):
            k = np.flatnonzero(self.gain == a)
            gain = a if self.factor is None else a * self.factor[k]
            off = None if self.offset is None else self.offset[k]
            got = getattr(self.model, method)(gain, vd[:, k], self.load_g[k], load_i[:, k], off)
            out[:, :, k] = got if method == "slopes" else (got, got)
        return out

    def shifts(self, v, sources):
        """s = V_out - a V_d of every amplifier (B, m) at free voltages v and source voltages ``sources``."""
        vd, load_i = self._terms(v, sources)
        return self._per_gain("output", vd, load_i)[0] - self.gain * vd

    def rhs(self, s):
        """The shifts' drive (B, n_free) on KCL's right-hand side."""
        return np.asarray((self.Mx.T @ s.T).T)

    def jacobian_blocks(self, v, sources):
        """Per sample, d rhs / d v (n_free x n_free): the shifts move with the driver (alpha - a) and with the load
        (rho: the output's share of a change of its load current), alpha and rho from ``model.slopes``."""
        vd, load_i = self._terms(v, sources)
        alpha, rho = self._per_gain("slopes", vd, load_i)
        Sd, Lf, MxT = self.Sd.toarray(), self.Lf.toarray(), self.Mx.T.toarray()
        return [MxT @ ((alpha[b] - self.gain)[:, None] * Sd + rho[b][:, None] * Lf) for b in range(v.shape[0])]


def compile_graph(net: GraphNetwork) -> CompiledGraph:
    free, sources = net.free_nodes, net.sources
    fi = {n: i for i, n in enumerate(free)}
    si = {n: i for i, n in enumerate(sources)}
    kr, kc, kv, dr, dc, dv = [], [], [], [], [], []

    def couple(row, col, value):
        """Current leaving `row` gains `value * V_col`."""
        if row not in fi:
            return
        if col in fi:
            kr.append(fi[row]), kc.append(fi[col]), kv.append(value)
        else:
            dr.append(fi[row]), dc.append(si[col]), dv.append(-value)

    for u, v, g, a, d in conductances(net.graph):
        if a is not None:
            o = v if d == u else u
            couple(o, o, g), couple(o, d, -g * a)  # o sees the amplified voltage a V_d
            couple(d, d, g), couple(d, o, -g / a)  # d gets the backward current divided by a
        else:
            couple(u, u, g), couple(u, v, -g), couple(v, v, g), couple(v, u, -g)
    n, m = len(free), len(sources)
    K = sp.csr_matrix((kv, (kr, kc)), shape=(n, n))
    D = sp.csr_matrix((dv, (dr, dc)), shape=(n, m))
    rr, rc, rv = [], [], []
    for node in net.output_nodes:
        k, sign = net.graph.nodes[node]["readout"]
        rr.append(k), rc.append(fi[node]), rv.append(sign)
    R = sp.csr_matrix((rv, (rr, rc)), shape=(net.n_targets, n))
    groups = {}
    for node in free:
        clamp = net.graph.nodes[node].get("neuron")
        if clamp is not None:
            groups.setdefault(clamp, []).append(fi[node])
    kappa = np.array([net.energy_weights[n] for n in free])
    amps = None if net.amplifier.ideal else _graph_amplifiers(net, fi, si)
    return CompiledGraph(free, sources, K, D, R, [(c, np.array(ix)) for c, ix in groups.items()], kappa, amps)


def _graph_amplifiers(net: GraphNetwork, fi: dict, si: dict) -> GraphAmplifiers | None:
    keys, rows = {}, ([], [], [], [], [], [])  # per amplifier: the edges it drives, free and source
    for u, v, g, a, d in conductances(net.graph):
        if a is None:
            continue
        o = v if d == u else u
        k = keys.setdefault((d, float(a)), len(keys))
        if o in fi:
            rows[0].append(k), rows[1].append(fi[o]), rows[2].append(g)
        else:
            rows[3].append(k), rows[4].append(si[o]), rows[5].append(g)
    if not keys:
        return None
    m = len(keys)
    order = sorted(keys, key=keys.get)
    nodes = net.graph.nodes
    half = lambda a: "_inv" if a < 0 else ""  # noqa: E731  (a differential amplifier's inverting half: its own)
    offsets = [nodes[d].get("amp_offset" + half(a)) for d, a in order]
    factors = [nodes[d].get("amp_gain_factor" + half(a)) for d, a in order]
    return GraphAmplifiers(
        net.amplifier, np.array([a for _, a in order]), np.array([fi.get(d, si.get(d)) for d, _ in order]),
        np.array([d in fi for d, _ in order]),
        sp.csr_matrix((rows[2], (rows[0], rows[1])), shape=(m, len(fi))),
        sp.csr_matrix((rows[5], (rows[3], rows[4])), shape=(m, len(si))),
        None if all(o is None for o in offsets) else
        np.array([net.amplifier.offset if o is None else o for o in offsets], dtype=float),
        None if all(f is None for f in factors) else np.array([1.0 if f is None else f for f in factors], dtype=float))


def _batch_clamps(groups, B: int, n: int) -> list:
    """Each clamp's node indices of one sample, laid out flat over a batch of B samples of n nodes."""
    return [(c, (np.arange(B)[:, None] * n + ix[None, :]).reshape(-1)) for c, ix in groups]


class _Batch:
    """The block-diagonal system of a batch, with the per-node clamps laid out flat."""

    def __init__(self, cg: CompiledGraph, sources, y, beta, extra=None, amps=None):
        B, n = sources.shape[0], len(cg.free)
        self.B, self.n = B, n
        self.amps, self.sources = amps, sources  # op-amps solved with the nodes (Newton), where given
        K = cg.K
        rhs = sources @ cg.D.T.toarray() if cg.D.nnz else np.zeros((B, n))
        if extra is not None:
            rhs = rhs + extra
        if beta != 0.0 and y is not None:
            K = K + beta * (cg.R.T @ cg.R)
            rhs = rhs + beta * (y @ cg.R.toarray())
        self.K1 = sp.csr_matrix(K)
        self.b = rhs.reshape(-1)
        self.clamps = _batch_clamps(cg.groups, B, n)
        self.kappa = np.tile(cg.kappa, B)

    @cached_property
    def K(self):
        """The batch's block-diagonal matrix, built where a solve needs it whole (not by ``_reduced``)."""
        return sp.kron(sp.identity(self.B, format="csr"), self.K1, format="csr")

    def times_K(self, v):
        """K @ v, sample by sample with K1."""
        return np.asarray(self.K1 @ v.reshape(self.B, self.n).T).T.reshape(-1)

    def clamp_current(self, v):
        i = np.zeros_like(v)
        for c, ix in self.clamps:
            i[ix] = c.current(v[ix])
        return i

    def clamp_conductance(self, v):
        g = np.zeros_like(v)
        for c, ix in self.clamps:
            g[ix] = c.conductance(v[ix])
        return g

    def residual(self, v):
        r = self.times_K(v) - self.b + self.clamp_current(v)
        if self.amps is not None:
            vb = v.reshape(self.B, self.n)
            r = r - self.amps.rhs(self.amps.shifts(vb, self.sources)).reshape(-1)
        return r

    def jacobian(self, v):
        J = self.K + sp.diags(self.clamp_conductance(v))
        if self.amps is not None:
            J = J - sp.block_diag(self.amps.jacobian_blocks(v.reshape(self.B, self.n), self.sources))
        return J.tocsc()


def solve_graph(cg: CompiledGraph, sources, y, beta, init, tol, max_iter, extra=None, with_amps=False):
    """Returns (voltages (B, n_free), iterations, final residual vector); ``extra``: drives added to KCL's
    right-hand side (B, n_free), e.g. the op-amps' shifts held (``GraphAmplifiers.rhs``); ``with_amps``: the
    op-amps solved with the nodes by Newton (their outputs from the voltages, their slopes in the Jacobian), for
    networks without ideal diodes."""
    hard = {c.diode.hard for c, _ in cg.groups}
    batch = _Batch(cg, sources, y, beta, extra, cg.amps if with_amps and hard != {True} else None)
    if len(hard) > 1:
        raise NetworkError("the generic solver cannot mix ideal diodes with other diode models in one network; "
                           "use one model, or a layered network with method='bcd'")
    if hard == {True}:
        v, it = _box_solve(batch, cg, tol, max_iter)
        r = batch.times_K(v) - batch.b
        return v.reshape(batch.B, batch.n), it, r
    if init is not None:
        v = np.asarray(init, dtype=float).reshape(-1).copy()
    else:
        # Start from the ideal-diode solution (nodes on or inside their rails): the linear solution can
        # sit volts past a rail, deep in the exponential where Newton steps mean little.
        v, _ = _box_solve(batch, cg, tol, max_iter)
    v, it = _newton(batch, v, tol, max_iter)
    if not np.isfinite(v).all():
        raise _not_converged(batch, batch.residual(v), np.tile(batch.K1.diagonal(), batch.B), "Newton", it)
    return v.reshape(batch.B, batch.n), it, batch.residual(v)


def _newton(batch: _Batch, v, tol, max_iter):
    diag = np.tile(batch.K1.diagonal(), batch.B)
    r = batch.residual(v)
    norms = []
    smallest, stalled = np.inf, 0
    for it in range(1, max_iter + 1):
        step = spla.spsolve(batch.jacobian(v), -r)
        big = np.abs(step).max(initial=0.0)
        if big <= tol:  # the full Newton step estimates the remaining error: done
            return v + step, it
        # Newton halves its step (at least) each iteration until it reaches the rounding floor of the solve, which
        # in an ill-conditioned system (milliohm wires beside microsiemens conductances) lies above tol: steps
        # that stop shrinking for STALL iterations are that floor. Accept when the voltage-equivalent residual
        # is below tol, as where no step lowers the residual.
        smallest, stalled = (big, 0) if big < 0.5 * smallest else (smallest, stalled + 1)
        if stalled >= STALL and np.abs(r / diag).max(initial=0.0) <= tol:
            return v, it
        if big > MAX_STEP:
            step *= MAX_STEP / big
        norms = (norms + [np.linalg.norm(r)])[-NONMONOTONE:]
        # Op-amps that saturate make the residual piecewise smooth: Newton steps across kinks may raise it for a
        # few steps before it falls. With them a step is tested against twice the largest of the last few
        # residuals (a non-monotone line search, after Grippo, Lampariello & Lucidi 1986); without, the last.
        norm = 2 * max(norms) if batch.amps is not None else norms[-1]
        t = 1.0
        for _ in range(40):
            trial = v + t * step
            r_trial = batch.residual(trial)
            if np.linalg.norm(r_trial) <= norm:
                break
            t *= 0.5
        else:
            # No step lowers the residual: it sits at the rounding floor (an ill-conditioned Jacobian can
            # still propose a large step). Accept when the voltage-equivalent residual is below tol.
            if np.abs(r / diag).max(initial=0.0) <= tol:
                return v, it
            raise _not_converged(batch, r, diag, "Newton (line search)", it)
        v, r = trial, r_trial
    raise _not_converged(batch, r, diag, "Newton", max_iter)


REDUCE_MIN_NODES = 2000  # free nodes per sample from which the linear ones are eliminated first (_reduced)
REDUCE_MAX_ENTRIES = 50_000_000  # linear x clamped nodes at most: the dense coupling block it keeps (400 MB)


def _box_solve(batch: _Batch, cg: CompiledGraph, tol, max_iter):
    """``_active_set`` on the batch, or on its clamped and read-out nodes alone where most nodes are linear
    (``_reduced``)."""
    clamped = _kept(cg).size
    n = batch.n
    if (n >= REDUCE_MIN_NODES and 0 < clamped <= n // 4 and (n - clamped) * clamped <= REDUCE_MAX_ENTRIES
            and batch.amps is None):
        return _reduced(batch, cg, tol, max_iter)
    return _active_set(batch, tol, max_iter)


def _kept(cg: CompiledGraph) -> np.ndarray:
    """The nodes ``_reduced`` keeps (sorted): the clamped ones, and the read-out ones, where the nudge acts."""
    got = cg.memo.get("kept")
    if got is None:
        kept = np.zeros(len(cg.free), bool)
        for _, ix in cg.groups:
            kept[ix] = True
        kept[cg.R.tocsr().indices] = True
        got = cg.memo["kept"] = np.flatnonzero(kept)
    return got


def _reduction(cg: CompiledGraph):
    """(kept nodes C, linear nodes L, LU of K_LL, K_LL^-1 K_LC, K_CL, the Schur complement K_CC - K_CL K_LL^-1 K_LC),
    of the free phase's matrix row-scaled by kappa. The nudge adds beta R^T R on the read-out nodes, which are
    all kept, so the free and nudged phases of a step share this: computed once per compiled graph (``memo``)."""
    got = cg.memo.get("reduction")
    if got is None:
        C = _kept(cg)
        L = np.setdiff1d(np.arange(len(cg.free)), C)
        K1 = (sp.diags(cg.kappa) @ cg.K).tocsr()
        rows_L, rows_C = K1[L], K1[C]
        lu = spla.splu(rows_L[:, L].tocsc())
        X = lu.solve(rows_L[:, C].toarray())  # K_LL^-1 K_LC
        KCL = rows_C[:, L]
        got = cg.memo["reduction"] = (C, L, lu, X, KCL, rows_C[:, C].toarray() - KCL @ X)
    return got


class _Reduced:
    """A batch's system on its clamped nodes only (the Schur complement of the linear ones), in the fields
    ``_active_set`` reads; already row-scaled (kappa 1)."""

    def __init__(self, S, rhs, groups, B):
        self.B, self.n = B, S.shape[0]
        self.K1 = sp.csr_matrix(S)
        self.K = sp.kron(sp.identity(B, format="csr"), self.K1, format="csr")
        self.b = rhs.reshape(-1)
        self.clamps = _batch_clamps(groups, B, self.n)
        self.kappa = np.ones(B * self.n)


def _reduced(batch: _Batch, cg: CompiledGraph, tol, max_iter):
    """The batch's box-constrained solve with its linear nodes eliminated once for the whole batch.

    Every sample has the same matrix (only the right-hand side depends on the inputs). Where most nodes are
    linear (a crossbar's wire nodes around its neurons: ``circuits.parasitics``), they are eliminated exactly:
    one sparse LU of the linear block, the clamped nodes' Schur complement S (dense), the active-set method on S
    for every sample, then the linear nodes from the clamped ones by the same LU. The same equilibrium as the
    full system (tested), for a factorisation per batch instead of one per sample and active-set iteration. The
    read-out nodes are kept with the clamped ones, so the factorisation does not depend on the nudge: the phases
    of a step share it (``_reduction``)."""
    B, n = batch.B, batch.n
    kap = cg.kappa
    b = (kap[None, :] * batch.b.reshape(B, n))
    C, L, lu, X, KCL, S = _reduction(cg)
    nudge = batch.K1 - cg.K  # beta R^T R of a nudged phase: on read-out nodes only, all of them kept
    if nudge.nnz:
        S = S + (sp.diags(kap) @ nudge).tocsr()[C][:, C].toarray()
    YL = lu.solve(np.ascontiguousarray(b[:, L].T))  # K_LL^-1 b_L, one column per sample
    YL = YL.reshape(len(L), B)
    rhs = b[:, C] - (KCL @ YL).T
    groups = [(c, np.searchsorted(C, ix)) for c, ix in cg.groups]
    vC, it = _active_set(_Reduced(S, rhs, groups, B), tol, max_iter)
    vC = vC.reshape(B, len(C))
    v = np.empty((B, n))
    v[:, C] = vC
    v[:, L] = (YL - X @ vC.T).T
    return v.reshape(-1), it


def _active_set(batch: _Batch, tol, max_iter):
    # Row-scale KCL by the energy weights: the system becomes the symmetric M-matrix of a convex QP,
    # for which the primal-dual active-set method terminates (amplifiers make K itself non-symmetric).
    scale = sp.diags(batch.kappa)
    K, b = (scale @ batch.K).tocsr(), batch.kappa * batch.b
    N = b.size
    diag = K.diagonal()
    lo_rail = np.full(N, -np.inf)
    hi_rail = np.full(N, np.inf)
    for c, ix in batch.clamps:
        lo_rail[ix], hi_rail[ix] = c.v_low, c.v_high
    v = spla.spsolve(K.tocsc(), b)
    lam = np.zeros(N)  # current leaving each node through its diodes
    up, down = np.zeros(N, bool), np.zeros(N, bool)
    seen, least_index = set(), False
    for it in range(1, max_iter + 1):
        if not least_index:
            probe = v + lam / diag
            new_up, new_down = probe > hi_rail, probe < lo_rail
        else:
            # Murty's least-index rule: flip only the first infeasible node. Slower, but finite for
            # any symmetric positive definite system; used only if the fast rule starts to cycle.
            bad = np.flatnonzero((~(up | down) & ((v > hi_rail + 1e-15) | (v < lo_rail - 1e-15)))
                                 | (up & (lam < 0)) | (down & (lam > 0)))
            if bad.size == 0:
                return v, it
            i = bad[0]
            new_up, new_down = up.copy(), down.copy()
            if up[i] or down[i]:
                new_up[i] = new_down[i] = False
            else:
                new_up[i], new_down[i] = v[i] > hi_rail[i], v[i] < lo_rail[i]
        key = (new_up.tobytes(), new_down.tobytes())
        if not least_index and key == (up.tobytes(), down.tobytes()) and it > 1:
            return v, it
        if not least_index and key in seen:
            least_index = True
            continue
        seen.add(key)
        up, down = new_up, new_down
        active = up | down
        v = np.where(up, hi_rail, np.where(down, lo_rail, 0.0))
        inactive = np.flatnonzero(~active)
        act = np.flatnonzero(active)
        if inactive.size:
            Kii = K[inactive][:, inactive].tocsc()
            rhs = b[inactive] - K[inactive][:, act] @ v[act]
            v[inactive] = spla.spsolve(Kii, rhs) if inactive.size > 1 else rhs / Kii.toarray().ravel()
        lam = np.zeros(N)
        lam[act] = b[act] - (K @ v)[act]
    r = batch.K @ v - batch.b
    raise _not_converged(batch, r, batch.K.diagonal(), "active-set", max_iter)


def _not_converged(batch, r, diag, method, max_iter):
    per_sample = np.abs(r / diag).reshape(batch.B, batch.n).max(1)
    worst = int(np.argmax(per_sample))
    res = float(np.abs(r).reshape(batch.B, batch.n)[worst].max())
    return ConvergenceError(f"{method} solver did not converge in {max_iter} iterations: sample {worst} "
                            f"has KCL residual {res:.3e} A; raise max_iter or check the network", worst, res)
