"""The circuit linearised at an operating point: its KCL Jacobian over the free nodes.

``jacobian(net, v, beta)`` is d(current into each free node) / d(free node voltages) at the node voltages v of one
sample (or with every diode off when v is None): minus each node's total conductance on the diagonal (its
resistors, the diodes' small-signal conductance, a nudge's beta R^T R), and the couplings of every connection.
An amplified connection c (gain a, conductances W, signed G+ - G- for a differential amplifier) couples the
driven node j to the driver i by a W_ij forward (the VCVS) and the driver to the driven node by W_ij / a
backward (the CCCS). Nodes an ideal diode holds on a rail are ``pinned``: a voltage source, not a state.

Op-amp amplifiers (``OpAmp``) linearise at the point: the output moves by alpha dV_in - rho dI (alpha the
closed-loop gain, rho its output resistance over 1 + that times the load's conductance G, both from
``OpAmp.slopes``; a saturated one has alpha 0 and its open-loop resistance). Then the driven nodes couple to the
driver by alpha W, to each other by W^T diag(rho) W (through the shared output), the driver to the driven nodes by
W (1 - G rho) / a, and the driver's own CCCS term is G alpha / a instead of G. A unit current through a conductance
the amplifier drives injects +1 at the driven node, -rho W_i. across the driven layer (the output's drop) and
-(1 - G rho) / a at the driver; with alpha = a and rho = 0 all of this is the ideal amplifier.

The noise model (``circuits.noise``) and the co-simulation's loop bounds (``cosim.bounds``) both start here.
"""
from __future__ import annotations

import numpy as np

from .energy import node_conductance
from .errors import InputError
from .network import LayeredNetwork

RAIL_TOL = 1e-9  # V: a node this close to an ideal diode's rail is held there


def offsets(net: LayeredNetwork) -> np.ndarray:
    """Index of each free layer's first node in the stacked free-node vector (and the total at the end)."""
    return np.concatenate([[0], np.cumsum(net.free_sizes)]).astype(int)


def readout_rows(net: LayeredNetwork) -> np.ndarray:
    """R over all free nodes (targets x free nodes): the prediction is R V."""
    R = net.readout_matrix
    n = int(sum(net.free_sizes))
    Rf = np.zeros((R.shape[0], n))
    Rf[:, n - R.shape[1]:] = R
    return Rf


def jacobian(net: LayeredNetwork, v=None, beta: float = 0.0) -> tuple:
    """(J, pinned) at one sample's free-node voltages v (a list of layer vectors or one stacked vector; None:
    every diode off). J is n_free x n_free in siemens; ``pinned`` marks nodes held on a rail by an ideal
    diode (their rows and columns still hold the resistive terms: drop them for the states that move)."""
    return at_point(net, resistive_jacobian(net, beta, v), v)




def amplifier_slopes(net: LayeredNetwork, v=None) -> dict:
    """{connection: (alpha, rho)} of every op-amp connection at one sample's free-node voltages v (None: every
    amplifier unsaturated, as at a zero input)."""
    if not net.op_amps:
        return {}
    off = offsets(net)
    v = np.zeros(off[-1]) if v is None else _stacked(net, v)
    layers = [v[off[k]:off[k + 1]] for k in range(net.n_connections)]
    return {c: net.amplifier_slopes(c, layers[c - 1], layers[c]) for c in net.amplified}


def _stacked(net: LayeredNetwork, v) -> np.ndarray:
    n = int(sum(net.free_sizes))
    v = np.concatenate([np.ravel(layer) for layer in v]) if isinstance(v, (list, tuple)) else np.ravel(v)
    if v.shape != (n,):
        raise InputError(f"the operating point has {v.size} node voltages; the network has {n} free nodes")
    return v.astype(float)


def resistive_jacobian(net: LayeredNetwork, beta: float = 0.0, v=None) -> np.ndarray:
    """J with every diode off: the resistors, the amplifiers and a nudge's beta R^T R. Op-amps are linearised at
    v (one sample's free-node voltages; None: unsaturated), ideal amplifiers do not depend on it."""
    off = offsets(net)
    J = np.diag(-np.concatenate(node_conductance(net)).astype(float))
    slopes = amplifier_slopes(net, v)
    for c in range(1, net.n_connections):
        a = float(net.gains[c])
        w = net.signed_weights(c)
        u, d = slice(off[c - 1], off[c]), slice(off[c], off[c + 1])
        if c in slopes:
            # per conductance row r (an amplifier: sign s_r, -1 for an inverting half): its output moves alpha_r per
            # volt of its driver and rho_r per ampere of its load; its CCCS passes s_r / a of its output current
            alpha, rho = slopes[c]
            rows = net.weights[c]
            g = rows.sum(1)
            signs = net.row_signs(c)
            s_r = 1.0 if signs is None else signs
            J[d, u] = net.to_drivers(c, (alpha[:, None] * rows).T)
            J[u, d] = net.to_drivers(c, (rows * (s_r * (1.0 - g * rho) / a)[:, None]).T).T
            J[d, d] += rows.T @ (rho[:, None] * rows)
            J[np.arange(u.start, u.stop), np.arange(u.start, u.stop)] += net.to_drivers(c, g - s_r * g * alpha / a)
            continue
        J[d, u] = a * w.T
        J[u, d] = w / a
    if beta:
        Rf = readout_rows(net)
        J -= beta * Rf.T @ Rf
    return J


def pinned(net: LayeredNetwork, voltages) -> np.ndarray:
    """Which free nodes an ideal diode holds on a rail, for node voltages (..., n_free): a boolean array of
    their shape."""
    voltages = np.asarray(voltages, dtype=float)
    off = offsets(net)
    held = np.zeros(voltages.shape, dtype=bool)
    for c, clamp in enumerate(net.neurons):
        if clamp is not None:
            f = clamp.diode.frozen(clamp, voltages[..., off[c]:off[c + 1]], RAIL_TOL)
            if f is not None:
                held[..., off[c]:off[c + 1]] = f
    return held


def at_point(net: LayeredNetwork, J0: np.ndarray, v=None) -> tuple:
    """(J, pinned): ``resistive_jacobian`` J0 with the diodes' small-signal conductance at v added and the nodes
    an ideal diode holds marked (J0 is not changed)."""
    off = offsets(net)
    n = int(off[-1])
    if v is None:
        return J0.copy(), np.zeros(n, dtype=bool)
    v = np.concatenate([np.ravel(layer) for layer in v]) if isinstance(v, (list, tuple)) else np.ravel(v)
    if v.shape != (n,):
        raise InputError(f"the operating point has {v.size} node voltages; the network has {n} free nodes")
    J = J0.copy()
    held = pinned(net, v)  # (v was checked against the network's size above)
    for c, clamp in enumerate(net.neurons):
        if clamp is not None and not clamp.diode.hard:  # a smooth diode adds its small-signal conductance
            idx = np.arange(off[c], off[c + 1])
            J[idx, idx] -= clamp.conductance(v[idx])
    return J, held


def amplifier_noise(net: LayeredNetwork, v=None) -> np.ndarray:
    """The op-amps' input voltage noise as a two-sided current noise density matrix (n_free x n_free, A^2/Hz) at one
    sample's voltages v: each amplifier r's noise moves its output by k_r (``OpAmp.offset_gain``) per volt, which
    drives W_r. into its loads and takes s_r G_r / a from its driver through the CCCS (s_r: -1 for an inverting
    half); with en the one-sided density, en^2 / 2 k_r^2 b_r b_r^T summed. Zeros without op-amp noise."""
    off = offsets(net)
    n = int(off[-1])
    N = np.zeros((n, n))
    en = float(getattr(net.amplifier, "noise", 0.0) or 0.0)
    if not net.op_amps or en == 0.0:
        return N
    v = np.zeros(n) if v is None else _stacked(net, v)
    layers = [v[off[k]:off[k + 1]] for k in range(net.n_connections)]
    for c in net.amplified:
        a, w = float(net.gains[c]), net.weights[c]
        gain, drv, load_g, load_i, vos = net._amplifier_terms(c, layers[c - 1], layers[c])
        k = net.amplifier.offset_gain(gain, drv, load_g, load_i, vos)
        signs = net.row_signs(c)
        rows = w.shape[0]
        B = np.zeros((rows, n))  # b_r per volt at the amplifier's output
        B[:, off[c]:off[c + 1]] = w
        driver = np.arange(rows) % net.sizes[c] + off[c - 1]
        B[np.arange(rows), driver] -= (1.0 if signs is None else signs) * w.sum(1) / a
        B *= k[:, None]
        N += 0.5 * en * en * (B.T @ B)
    return N


def conductance_noise(net: LayeredNetwork, v=None) -> np.ndarray:
    """sum_k g_k b_k b_k^T over every conductance k (n_free x n_free, siemens): b_k is what a unit current
    through conductance k injects into the free nodes. A plain conductance injects +1 at one end and -1 at
    the other (a source end injects nowhere); one driven by an amplifier of gain a injects +1 at the driven
    node and -1/a at the driver (the CCCS passes 1/a of the amplifier's output current back), +1/a for the
    inverting half of a differential amplifier. Times 2 k T it is the two-sided thermal noise current
    density matrix (A^2/Hz) of the resistors. Op-amps (module notes) at one sample's voltages v."""
    off = offsets(net)
    n = int(off[-1])
    N = np.zeros((n, n))
    idx = np.arange(n)
    slopes = amplifier_slopes(net, v)
    for c in range(net.n_connections):
        d = slice(off[c], off[c + 1])
        N[idx[d], idx[d]] += net.weights[c].sum(0) + net.biases[c].sum(0)
        if c == 0:
            continue
        a = float(net.gains[c])
        if c in slopes:
            # sum_j W_rj b b^T with b = e_j - m_r, m_r = rho_r W_r. + k_r e_i(r) (k_r = s_r (1 - G_r rho_r) / a, i(r)
            # the row's driver, s_r its sign): diag(W_r.) - W_r. m_r^T - m_r W_r.^T + G_r m_r m_r^T, over the rows r
            _, rho = slopes[c]
            w = net.weights[c]
            g = w.sum(1)
            signs = net.row_signs(c)
            k = (1.0 - g * rho) / a * (1.0 if signs is None else signs)
            u = slice(off[c - 1], off[c])
            N[d, d] += w.T @ ((g * rho * rho - 2.0 * rho)[:, None] * w)
            N[idx[u], idx[u]] += net.to_drivers(c, g * k * k)
            block = net.to_drivers(c, (-(k * (1.0 - g * rho))[:, None] * w).T).T
            N[u, d] += block
            N[d, u] += block.T
            continue
        u = slice(off[c - 1], off[c])
        N[idx[u], idx[u]] += net.row_conductance(c) / a**2
        block = -net.signed_weights(c) / a
        N[u, d] += block
        N[d, u] += block.T
    return N
