"""Energy of a layered resistive network, and its gradient: Kirchhoff's current law.

The co-content of connection c is  1/2 sum_ij G_ij (a_c u_i - v_j)^2  (u: layer c, v: layer c+1, a_c the
amplifier gain), plus the bias conductances and the diode co-content of layer c+1. With amplifiers
the terms of connection c are weighted by kappa_c = 1 / (a_1 ... a_c)^2, which makes the stationarity
of the total energy exactly the physical KCL of the amplified circuit (see devices.Amplifier).

Total energy  F = E + kappa_L * beta * C,  C = 1/2 ||R V_out - y||^2, where R reads the outputs (pairs:
V+ - V-). The nudge is the current beta * R^T (y - R V_out) injected into the output nodes.
"""
from __future__ import annotations

import numpy as np

from . import kernels
from .network import LayeredNetwork

#: False: ``statistics_difference`` takes its numpy path everywhere (tests compare the two)
COMPILED_STATISTICS = True


def _pre(net: LayeredNetwork, sources, layers, c):
    """Voltage that connection c's conductances see on their driving side: a_c * V_c (or a_c [V_c, -V_c]) for
    ideal amplifiers, the op-amps' outputs otherwise (``LayeredNetwork.amplifier_output``)."""
    if c == 0:
        return sources
    return net.amplifier_output(c, layers[c - 1], layers[c])


def _effective(net: LayeredNetwork, sources, layers, c):
    """The driving voltage before the gain that gives connection c's actual drops: ``_driving`` for ideal
    amplifiers, the op-amps' outputs divided by the nominal gain otherwise."""
    if c == 0 or net.amplifier.ideal or net.gains[c] == 1.0:
        return _driving(net, sources, layers, c)
    return _pre(net, sources, layers, c) / net.gains[c]


def _driving(net: LayeredNetwork, sources, layers, c):
    """Connection c's driving-side voltages before the gain: the sources, or layer c (both signs if paired)."""
    return sources if c == 0 else net.driven(c, layers[c - 1])


def squared_drops(u: np.ndarray, v: np.ndarray, a: float = 1.0) -> np.ndarray:
    """sum over the batch of (a u_i - v_j)^2 for every pair (i, j), without the (batch, i, j) tensor."""
    return (a * a) * (u * u).sum(0)[:, None] - 2.0 * a * (u.T @ v) + (v * v).sum(0)[None, :]


def conductance_statistics(net: LayeredNetwork, sources, layers) -> list:
    """dE/dG summed over the batch: kappa_c / 2 * (drop across each conductance)^2, weights then biases.

    This is EqProp's local statistic: each conductance needs only the voltage drop across itself."""
    kappa = net.energy_weights
    vb = net.bias_voltage
    weights, biases = [], []
    for c in range(net.n_connections):
        u = _effective(net, sources, layers, c)
        v = layers[c]
        weights.append(0.5 * kappa[c] * squared_drops(u, v, net.gains[c]))
        biases.append(0.5 * kappa[c] * np.stack([((v - vb) ** 2).sum(0), ((v + vb) ** 2).sum(0)]))
    return weights + biases


class PairedRows:
    """The statistics of an input connection of +x/-x pairs as the trainer's update reads them: ``plus``, the + rows
    (features, nodes), and ``row``; each - row is ``row - plus`` (its source is the + source negated), formed by
    the update as it reads it (``learning.update.sgd_step_pairs``) instead of written here and read back: on
    1568-1024-20 that is 6.4 MB a step. ``full()``: the (2 features, nodes) array ``statistics_difference``
    gives, bit for bit."""

    __slots__ = ("plus", "row")

    def __init__(self, plus: np.ndarray, row: np.ndarray):
        self.plus, self.row = plus, row

    @property
    def shape(self) -> tuple:
        return (2 * self.plus.shape[0], self.plus.shape[1])

    def full(self) -> np.ndarray:
        n = self.plus.shape[0]
        w = np.empty(self.shape)
        w[:n] = self.plus
        np.subtract(self.row, self.plus, out=w[n:])
        return w


def statistics_difference(net: LayeredNetwork, sources, layers_hi, layers_lo, paired: bool = False) -> list:
    """conductance_statistics at one phase minus at another, with the same sources, computed as a difference.

    For the input connection the sources cancel exactly: a^2 u^2 drops out and u^T v_hi - u^T v_lo is one
    product u^T (v_hi - v_lo). Besides halving that (largest) GEMM, this avoids subtracting two large
    sums of squares whose difference is of order beta: the estimate keeps its digits at small beta. Later
    connections use u_hi^T v_hi - u_lo^T v_lo = u_hi^T (v_hi - v_lo) + (u_hi - u_lo)^T v_lo for the same reason. With
    +x/-x input pairs the product runs over the features only (the -x rows are the +x rows negated), so ``sources``
    may then be the (batch, features) features themselves: the -x half is never read. ``paired``: that connection's
    statistics come as ``PairedRows`` (the - rows left to the update).

    Where the kernels serve (float64 voltages, ideal amplifiers or unit gains, no differential hidden layers),
    each connection's operands and its bias statistics are one compiled pass (``kernels.input_statistics``,
    ``kernels.layer_statistics``), the same numbers bit for bit as the numpy lines below, which at small batches cost
    about as much as the products they feed (``python benchmarks/statistics_parts.py``); the products stay with
    BLAS."""
    if COMPILED_STATISTICS and _compiled_serves(net, sources, layers_hi, layers_lo):
        return _compiled_difference(net, sources, layers_hi, layers_lo, paired)
    kappa = net.energy_weights
    vb = net.bias_voltage
    weights, biases = [], []
    for c in range(net.n_connections):
        a = net.gains[c]
        k = 0.5 * kappa[c]
        vh, vl = layers_hi[c], layers_lo[c]
        dv = vh - vl
        sq_v = (dv * (vh + vl)).sum(0)  # sum vh^2 - vl^2, as a product of a difference
        # Each w is written by one GEMM (the rank-one terms ride along as an extra row of ones): temporaries
        # and passes over an input layer's size cost more than the product at small batches.
        if c == 0:
            d = np.vstack([dv * (-2.0 * a * k), k * sq_v[None, :]])
            # sources [x, -x]: the -x rows are the +x rows negated, one GEMM over the features
            n = net.n_features if net.input_pairs else sources.shape[1]
            x1 = np.vstack([sources[:, :n], np.ones((1, n))])
            w = _input_weights(net, x1, d, 2.0 * k * sq_v if net.input_pairs else None, paired)
        else:
            uh, ul = _effective(net, sources, layers_hi, c), _effective(net, sources, layers_lo, c)
            sq_u = ((uh - ul) * (uh + ul)).sum(0)
            # uh^T vh - ul^T vl = uh^T (vh - vl) + (uh - ul)^T vl: products of differences, no cancellation
            left = np.vstack([uh, uh - ul, sq_u[None, :], np.ones((1, uh.shape[1]))])
            right = np.vstack([dv * (-2.0 * a * k), vl * (-2.0 * a * k), np.full((1, dv.shape[1]), k * a * a),
                               k * sq_v[None, :]])
            w = left.T @ right
        weights.append(w)
        s_v = dv.sum(0)
        biases.append(k * np.stack([sq_v - 2 * vb * s_v, sq_v + 2 * vb * s_v]))
    return weights + biases


def _input_weights(net: LayeredNetwork, x1, d, row, paired: bool):
    """The input connection's statistics from its GEMM's operands: x1^T d (x1 the sources over a row of ones); with
    +x/-x pairs that is the + rows (-2ak x^T dv + k sq), and each - row is ``row`` (2k sq) minus its + row, as
    ``PairedRows`` where ``paired`` (the update forms them), else written below the + rows."""
    if not net.input_pairs:
        return x1.T @ d
    n, m = x1.shape[1], d.shape[1]
    if paired:
        return PairedRows(np.matmul(x1.T, d, out=np.empty((n, m))), row)  # the same product, rows apart
    w = np.empty((2 * n, m))
    np.matmul(x1.T, d, out=w[:n])
    np.subtract(row, w[:n], out=w[n:])
    return w


def _compiled_serves(net: LayeredNetwork, sources, layers_hi, layers_lo) -> bool:
    """Whether ``_compiled_difference`` takes these operands: the kernels present, float64 2-d arrays of one
    batch, every connection's driving voltages its layer itself (no differential hidden layers; ideal amplifiers or
    unit gains), every free layer at least two nodes."""
    if not kernels.available() or net.hidden_pairs or type(sources) is not np.ndarray or sources.ndim != 2:
        return False
    if not (net.amplifier.ideal or all(a == 1.0 for a in net.gains[1:])):
        return False
    B = sources.shape[0]
    if (sources.dtype != np.float64 or B < 1 or len(layers_hi) != net.n_connections
            or len(layers_lo) != len(layers_hi) or (net.input_pairs and sources.shape[1] < net.n_features)):
        return False  # (too few source columns: the kernel would read past them; numpy's lines raise)
    for vh, vl in zip(layers_hi, layers_lo):
        if (type(vh) is not np.ndarray or type(vl) is not np.ndarray or vh.dtype != np.float64 or vl.dtype != np.float64
                or vh.ndim != 2 or vh.shape != vl.shape or vh.shape[0] != B or vh.shape[1] < 2):
            return False  # (numpy sums a one-node layer's column pairwise, not row by row as the kernels do)
    return True


def _compiled_difference(net: LayeredNetwork, sources, layers_hi, layers_lo, paired: bool) -> list:
    """``statistics_difference`` with each connection's operands made by one compiled pass (the caller checked
    ``_compiled_serves``)."""
    tv = 2 * net.bias_voltage
    kappa = net.energy_weights
    weights, biases = [], []
    B = sources.shape[0]
    for c in range(net.n_connections):
        a = net.gains[c]
        k = 0.5 * kappa[c]
        vh, vl = layers_hi[c], layers_lo[c]
        m = vh.shape[1]
        bias = np.empty((2, m))
        if c == 0:
            n = net.n_features if net.input_pairs else sources.shape[1]
            x1, d, row = np.empty((B + 1, n)), np.empty((B + 1, m)), np.empty(m)
            kernels.input_statistics(sources, vh, vl, -2.0 * a * k, k, tv, x1, d, row, bias)
            w = _input_weights(net, x1, d, row, paired)
        else:
            uh, ul = layers_hi[c - 1], layers_lo[c - 1]
            left, right = np.empty((2 * B + 2, uh.shape[1])), np.empty((2 * B + 2, m))
            kernels.layer_statistics(uh, ul, vh, vl, -2.0 * a * k, k, k * a * a, tv, left, right, bias)
            w = left.T @ right
        weights.append(w)
        biases.append(bias)
    return weights + biases


def node_conductance(net: LayeredNetwork) -> list:
    """Total conductance at every free node (sum of all its resistors), one array per free layer."""
    return net.node_totals()


def node_drive(net: LayeredNetwork, sources, layers, c) -> np.ndarray:
    """Sum over neighbours of conductance times (amplified) voltage, for the nodes of layer c+1.

    KCL at those nodes reads  S V - T + I_diode(V) + I_nudge = 0  with S from node_conductance.
    The backward current of the amplifier that drives connection c+1 arrives divided by its gain: the
    amplifier's output current I = G (V_o - V_next) summed, over a; S counts G once, so T gets the rest.
    """
    L = net.n_connections
    vb = net.bias_voltage
    t = _pre(net, sources, layers, c) @ net.weights[c] + vb * (net.biases[c][0] - net.biases[c][1])
    if c + 1 < L:
        t = t + (layers[c + 1] @ net.signed_weights(c + 1).T) / net.gains[c + 1]
        if not net.amplifier.ideal and net.gains[c + 1] != 1.0:  # the op-amp's output is not a V
            # each row's CCCS passes sign/a of its output current G V_o - (G v): the ideal part is in S and above
            a, rows, signs = net.gains[c + 1], net.weights[c + 1].sum(1), net.row_signs(c + 1)
            vo = _pre(net, sources, layers, c + 1) / a
            t = t + net.to_drivers(c + 1, (net.driver_rows(c + 1, layers[c]) - (vo if signs is None else signs * vo))
                                   * rows)
    return t


def readout(net: LayeredNetwork, v_out) -> np.ndarray:
    """Prediction R V_out: the pair differences V+ - V- (or the node voltages)."""
    if net.readout == "nodes":
        return v_out
    h = v_out.shape[1] // 2
    return v_out[:, :h] - v_out[:, h:]


def nudge_current(net: LayeredNetwork, v_out, y, beta) -> np.ndarray:
    """Current injected into each output node: beta R^T (y - R V_out)."""
    err = y - readout(net, v_out)
    return beta * (err if net.readout == "nodes" else np.hstack([err, -err]))


def kcl_residual(net: LayeredNetwork, sources, layers, y=None, beta=0.0) -> list:
    """Net current leaving each free node (amperes), one (batch, n) array per free layer; 0 at equilibrium.

    For ideal diodes the clamp current is whatever keeps the node on its rail, so at a clamped node
    only a current that pushes it further outwards is admissible: the residual there is the part
    of the current that the diode could not carry (zero when the rail is respected).
    """
    totals = node_conductance(net)
    res = []
    for c in range(net.n_connections):
        v = layers[c]
        r = totals[c] * v - node_drive(net, sources, layers, c)
        if c == net.n_connections - 1 and beta != 0.0 and y is not None:
            r = r - nudge_current(net, v, y, beta)
        res.append(clamp_residual(net.neurons[c], v, r))
    return res


def clamp_residual(clamp, v, r):
    """Adds the diodes' current to the resistive residual r of nodes at voltages v (each diode model owns
    its rule: an ideal diode carries only the forward current that keeps its node on the rail)."""
    return r if clamp is None else clamp.residual(v, r)


def energy(net: LayeredNetwork, sources, layers, y=None, beta=0.0) -> np.ndarray:
    """Total energy F = E + kappa_L beta C per sample (joules-per-second units of co-content, i.e. watts)."""
    net.require_ideal_amplifiers("the energy function")
    kappa = net.energy_weights
    vb = net.bias_voltage
    total = 0.0
    for c in range(net.n_connections):
        u, v, g = _pre(net, sources, layers, c), layers[c], net.weights[c]
        sq = (u**2) @ g.sum(1) - 2.0 * np.einsum("bj,bj->b", u @ g, v) + (v**2) @ g.sum(0)
        b = net.biases[c]
        sq = sq + ((v - vb) ** 2) @ b[0] + ((v + vb) ** 2) @ b[1]
        e = 0.5 * sq
        if net.neurons[c] is not None:
            e = e + net.neurons[c].cocontent(v).sum(1)
        total = total + kappa[c] * e
    if beta != 0.0 and y is not None:
        total = total + kappa[-1] * beta * cost(net, layers[-1], y)
    return total


def cost(net: LayeredNetwork, v_out, y) -> np.ndarray:
    """C = 1/2 ||R V_out - y||^2 per sample."""
    return 0.5 * ((readout(net, v_out) - y) ** 2).sum(1)
