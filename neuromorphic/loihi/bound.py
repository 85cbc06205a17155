"""The Loihi path's equilibrium error, bounded from the weight mantissas, the voltage LSB and the threshold.

At a silent state of the integer network (no node sends any more), every free node i that no rail holds
satisfies, in volts and amperes,

    (G_i + beta s_i) v_i = sum_j C_ij (v_j + eps_j) + b_i + beta (R^T y)_i + beta (partner) + e_i

where C are the exact couplings (forward a G, backward G / a), eps_j the sender's unsent remainder
(|eps| < max(theta, 1 LSB), or 2^shift LSB where the sender's payloads are shifted (``loihi.map``); input sources
also round to 0.5 LSB), and e_i the arithmetic's own errors:

  * weights:    sum_j |C~_ij - C_ij| (|v_j| + theta)    (8-bit mantissas; exact per synapse)
  * Dense shift: K_d current units per Dense with a negative weight exponent (Lava floors the shifted
    activation each step; K_d = steps in which that Dense had input)
  * bias, nudge: half a current unit each; the reciprocal multiplier: |drive| / 2r of a voltage LSB;
    the update's rounding: the integration stops within ceil(2048 / dv) LSB of its target. A voltage error
    d of a node's own update is a current error (G_i + beta s_i) d: at a nudged output node the nudge's
    conductance counts too (the node's multiplier divides by G + beta).
  * the nudge beta (t - v + partner) at an output node: the partner's unsent remainder (a pairs readout
    hears its partner's sent value, within max(theta, 1 LSB)), the target's rounding to half an LSB, and the
    integer beta's own rounding (half a step of 2^-shift) times |t| + |partner|.

Subtracting the exact KCL equations leaves  M dv = e'  with M the linearised network at the exact
equilibrium (node conductances plus conducting PWL diodes plus the nudge, minus the couplings between
nodes no rail holds; a node held at a rail is off by at most one LSB, the rails being rounded inward).
So  |dv| <= |M^-1| |e'|  elementwise (and, at a node an ideal clamp holds, at most the rails' span): the
bound below. It is first order in the sense that it assumes the
integer and the exact equilibria clamp the same nodes (a node within the error of its rail may not).
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits.energy import node_conductance


def _couplings(program):
    """Exact and mapped couplings into the free nodes: (C, C~) free x free and (Cin, Cin~) free x inputs."""
    net = program.net
    sizes = net.free_sizes
    off = np.concatenate([[0], np.cumsum(sizes)])
    n = off[-1]
    C, Cq = np.zeros((n, n)), np.zeros((n, n))
    Cin, Cinq = np.zeros((n, net.sizes[0])), np.zeros((n, net.sizes[0]))
    for d in program.dense:
        if d.role == "partner":
            continue
        rows = slice(off[d.dst], off[d.dst + 1])
        exact, mapped = d.conductance, d.mantissa * d.scale
        if d.src == "input":
            Cin[rows], Cinq[rows] = exact, mapped
        else:
            cols = slice(off[d.src], off[d.src + 1])
            C[rows, cols], Cq[rows, cols] = exact, mapped
    return C, Cq, Cin, Cinq, off


def error_bound(program, sources, exact_layers, beta: float = 0.0, active_steps=None, y=None) -> np.ndarray:
    """Per sample, the largest |v_loihi - v_exact| (V) the derivation above allows, for the exact equilibria
    ``exact_layers`` (list of (B, n) per free layer) at nudging ``beta`` (S) towards targets ``y`` (V; None:
    |y| <= 1 V); ``active_steps`` (per Dense, from ``emulate``) bounds the shift's floor errors (None: no
    negative exponent is assumed active)."""
    net = program.net
    lsb = program.lsb
    C, Cq, Cin, Cinq, off = _couplings(program)
    G = np.concatenate(node_conductance(net))
    # what a silent sender's sent value may differ from its own: max(theta, 1 LSB), or a payload shift's unit
    theta = np.concatenate([np.full(s, program.sender_quantum(c) * lsb) for c, s in enumerate(net.free_sizes)])
    theta_in = program.sender_quantum("input") * lsb
    unit = np.concatenate([np.full(s, 2.0 ** -f) for s, f in zip(net.free_sizes, program.current_frac)])
    dv_stall = np.concatenate([np.full(s, np.ceil(2048 / p.dv)) for s, p in zip(net.free_sizes, program.layers)])
    rs = np.concatenate([np.full(s, 2.0 ** p.rs) for s, p in zip(net.free_sizes, program.layers)])
    measured = program.leak == "measured"
    if measured:  # what the nodes divide by: the conductance they measured (mapped mantissas), rounded to 2^-gs
        from .emulator import measured_conductance

        g_scale = np.concatenate([np.full(s, 2.0 ** (f - program.vf + p.gs))
                                  for s, f, p in zip(net.free_sizes, program.current_frac, program.layers)])
        g_used = np.concatenate([g + p.g_const for g, p in zip(measured_conductance(program), program.layers)])
        g_used = g_used / g_scale
        # the update stops where |k (I - g v)| < 2^(ks - 1): a current of 2^(ks - 1) / k units, plus g v's rounding
        stall = np.concatenate([np.full(s, 2.0 ** (p.ks - 1) / p.k + 0.5) for s, p in zip(net.free_sizes, program.layers)])
    # the Dense floors: K current units per Dense with a negative exponent, into its target layer
    floor = np.zeros(len(G))
    for i, d in enumerate(program.dense):
        if d.weight_exp < 0 and active_steps is not None:
            floor[off[d.dst]:off[d.dst + 1]] += float(np.max(active_steps[:, i])) * 2.0 ** -program.current_frac[d.dst]
    V = np.hstack(exact_layers)
    o = slice(off[-2], off[-1])
    R = net.readout_matrix
    t_abs = (np.abs(np.asarray(y, dtype=float)) @ np.abs(R) if y is not None
             else np.tile(np.abs(R).sum(0), (V.shape[0], 1)))
    out_layer = program.layers[-1]
    beta_step = 0.0  # the integer beta's rounding (S): half a step of 2^-shift current units per LSB
    if beta:
        beta_step = 0.5 * 2.0 ** -out_layer.beta_shift * 2.0 ** -program.current_frac[-1] / lsb
    partner = program.sender_quantum(len(net.free_sizes) - 1) * lsb if net.readout == "pairs" else 0.0
    span = np.full(len(G), np.inf)  # an ideal clamp holds both equilibria between its rails
    for c, clamp in enumerate(net.neurons):
        if clamp is not None and "clip" in clamp.diode.integer_terms(clamp):
            span[off[c]:off[c + 1]] = clamp.v_high - clamp.v_low
    g_mid, g_on = np.zeros(len(G)), np.zeros(len(G))  # per node a PWL diode's conductances and its knees
    knee_hi, knee_lo = np.full(len(G), np.inf), np.full(len(G), -np.inf)
    clip = np.zeros(len(G), bool)  # nodes an ideal clamp holds between its rails
    rail_hi, rail_lo = np.zeros(len(G)), np.zeros(len(G))
    for c, clamp in enumerate(net.neurons):
        if clamp is None:
            continue
        sl = slice(off[c], off[c + 1])
        t = clamp.diode.integer_terms(clamp)
        if "clip" in t:
            clip[sl], rail_hi[sl], rail_lo[sl] = True, clamp.v_high, clamp.v_low
        else:
            g_mid[sl], g_on[sl], knee_hi[sl], knee_lo[sl] = t["g_mid"], t["g_on"], t["knee_high"], t["knee_low"]

    def g_on_part(v):
        return g_on * ((v > knee_hi) | (v < knee_lo))

    out = np.empty(V.shape[0])
    for b in range(V.shape[0]):
        v, s = V[b], np.asarray(sources[b], dtype=float)
        held = clip & ((v >= rail_hi - 1e-12) | (v <= rail_lo + 1e-12))
        g_extra = g_mid + g_on_part(v)
        e = (np.abs(Cq - C) @ (np.abs(v) + theta) + np.abs(Cinq - Cin) @ (np.abs(s) + theta_in)
             + C @ theta + Cin @ np.full(s.shape, theta_in + 0.5 * lsb)
             + floor + unit)  # sends, weights, floors, bias + nudge rounding
        e = e + C[:, held] @ np.full(held.sum(), lsb)  # rails rounded inward
        g_node = G + g_extra
        if beta:
            g_node[o] += beta  # the node's own multiplier divides by G + beta in a nudged phase
        if measured:  # the measured g's departure from G, the update's stall, the PWL step's rounding
            e = e + np.abs(g_used - (G + g_mid)) * np.abs(v) + 2.0 * stall * unit
            e = e + g_on_part(v) * 0.5 * lsb + g_node * 0.5 * lsb
            if beta:
                e[o] += 0.5 / g_scale[o] * np.abs(v[o])  # beta's rounding in g's units
        else:
            drive = g_node * (np.abs(v) + dv_stall * lsb) / unit  # current units
            local = (dv_stall + 0.5 + 0.5 * drive / rs) * lsb  # update and multiplier rounding (V)
            e = e + g_node * local
        if beta:
            v_partner = np.abs(v[o]) @ np.abs(R.T @ R - np.diag(np.diag(R.T @ R)))
            e[o] += abs(beta) * (partner + 0.5 * lsb) + beta_step * (t_abs[b] + v_partner + partner)
        free = ~held
        M = np.diag(G + g_extra) - C
        if beta:
            M[o, o] += beta * (R.T @ R)
        Mf = M[np.ix_(free, free)]
        dv = np.minimum(np.abs(np.linalg.inv(Mf)) @ e[free], span[free])
        out[b] = max(float(dv.max(initial=0.0)), lsb if held.any() else 0.0)
    return out
