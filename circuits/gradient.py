"""The true gradient of the loss at equilibrium, by implicit differentiation (the adjoint method).

At a free equilibrium dE/dV = 0, so dV/dtheta = -H^{-1} d2E/dVdtheta with H the Hessian of the energy
over the free nodes. With H lambda = dC/dV:  dL/dtheta = -lambda^T d2E/dV dtheta.
Nodes held on a rail by an ideal diode do not move with theta (strict complementarity) and drop out.
This is what every backend's EqProp estimate is compared against.

Op-amp amplifiers leave no energy function; their networks are differentiated through Kirchhoff's law itself
(``kcl_exact_gradient``): with F the current leaving each free node, F(V, theta) = 0 at equilibrium, J = -dF/dV
(``small_signal.jacobian``) and J^T lambda = dL/dV, dL/dtheta = lambda^T dF/dtheta. A conductance's dF/dG is its
voltage drop times what a unit current through it injects into the free nodes (the noise model's vector b:
``small_signal`` notes), so dL/dG = drop (lambda . b). On ideal networks it is the energy's gradient again (the
tests check both ways, and finite differences).
"""
from __future__ import annotations

import numpy as np


from .energy import node_conductance, readout
from .network import LayeredNetwork
from .small_signal import RAIL_TOL, jacobian, offsets


def resistive_exact_gradient(net: LayeredNetwork, free_eq, y) -> tuple:
    """(gradient list in the order weights..., biases...; mean loss) at a free equilibrium."""
    if net.op_amps:
        return kcl_exact_gradient(net, free_eq, y)
    layers = free_eq.layers
    x = free_eq.inputs
    y = np.asarray(y, dtype=float)
    B = x.shape[0]
    sizes = net.free_sizes
    offs = np.concatenate([[0], np.cumsum(sizes)])
    n = offs[-1]
    kappa = net.energy_weights
    totals = node_conductance(net)
    H = np.zeros((B, n, n))
    frozen = np.zeros((B, n), dtype=bool)
    for c in range(net.n_connections):
        sl = slice(offs[c], offs[c + 1])
        v = layers[c]
        d = np.broadcast_to(totals[c], v.shape).copy()
        clamp = net.neurons[c]
        if clamp is not None:
            pinned = clamp.diode.frozen(clamp, v, RAIL_TOL)
            if pinned is not None:
                frozen[:, sl] = pinned
            else:
                d = d + clamp.conductance(v)
        idx = np.arange(offs[c], offs[c + 1])
        H[:, idx, idx] = kappa[c] * d
        if c >= 1:
            block = -kappa[c] * net.gains[c] * net.signed_weights(c)
            H[:, offs[c - 1]:offs[c], sl] = block
            H[:, sl, offs[c - 1]:offs[c]] = block.T
    out = layers[-1]
    err = readout(net, out) - y
    g = np.zeros((B, n))
    g[:, offs[-2]:] = err if net.readout == "nodes" else np.hstack([err, -err])
    # Frozen nodes: identity rows/columns and zero right-hand side, so their lambda is 0.
    H = np.where(frozen[:, :, None] | frozen[:, None, :], 0.0, H)
    diag = np.arange(n)
    H[:, diag, diag] = np.where(frozen, 1.0, H[:, diag, diag])
    g = np.where(frozen, 0.0, g)
    lam = np.linalg.solve(H, g[:, :, None])[:, :, 0]
    lams = [lam[:, offs[c]:offs[c + 1]] for c in range(len(sizes))]
    src = net.encode_inputs(x)
    vb = net.bias_voltage
    grads_w, grads_b = [], []
    for c in range(net.n_connections):
        a = net.gains[c]
        u = src if c == 0 else net.driven(c, layers[c - 1])
        lu = np.zeros_like(u) if c == 0 else net.driven(c, lams[c - 1])
        v, lv = layers[c], lams[c]
        gw = (a * a) * (lu * u).sum(0)[:, None] - a * (lu.T @ v) - a * (u.T @ lv) + (lv * v).sum(0)[None, :]
        grads_w.append(-kappa[c] * gw / B)
        gb = np.stack([(lv * (v - vb)).sum(0), (lv * (v + vb)).sum(0)])
        grads_b.append(-kappa[c] * gb / B)
    loss = float(0.5 * (err**2).sum(1).mean())
    return grads_w + grads_b, loss


def kcl_exact_gradient(net: LayeredNetwork, free_eq, y) -> tuple:
    """The exact gradient through Kirchhoff's law (module notes): any layered network, op-amps and differential
    hidden layers included."""
    layers = free_eq.layers
    y = np.asarray(y, dtype=float)
    B = free_eq.inputs.shape[0]
    off = offsets(net)
    n = int(off[-1])
    err = readout(net, layers[-1]) - y
    lam = np.zeros((B, n))
    for b in range(B):
        v = free_eq.voltages[b]
        J, held = jacobian(net, v)
        g = np.zeros(n)
        g[off[-2]:] = err[b] if net.readout == "nodes" else np.hstack([err[b], -err[b]])
        keep = np.nonzero(~held)[0]
        if keep.size:
            lam[b, keep] = np.linalg.solve(J[np.ix_(keep, keep)].T, g[keep])
    lams = [lam[:, off[c]:off[c + 1]] for c in range(net.n_connections)]
    src = net.encode_inputs(free_eq.inputs)
    vb = net.bias_voltage
    grads_w, grads_b = [], []
    for c in range(net.n_connections):
        v, lv = layers[c], lams[c]
        if c == 0:  # a source end injects nowhere: dL/dG_ij = sum_b (V_j - s_i) lambda_j
            gw = (lv * v).sum(0)[None, :] - src.T @ lv
        else:
            a, w = net.gains[c], net.weights[c]
            u, lu = layers[c - 1], lams[c - 1]
            vo = net.amplifier_output(c, u, v)
            rho = net.amplifier_slopes(c, u, v)[1]  # every sample's at once (0 for an ideal amplifier)
            signs = net.row_signs(c)  # an inverting half's CCCS passes -1/a
            k = (1.0 - w.sum(1) * rho) / a * (1.0 if signs is None else signs)
            # what the driving side takes back of a unit current, weighted by lambda
            q = rho * (lv @ w.T) + k * net.driver_rows(c, lu)
            # sum_b (V_j - Vo_i) (lambda_j - q_i)
            gw = (lv * v).sum(0)[None, :] - vo.T @ lv - q.T @ v + (vo * q).sum(0)[:, None]
        grads_w.append(gw / B)
        grads_b.append(np.stack([(lv * (v - vb)).sum(0), (lv * (v + vb)).sum(0)]) / B)
    loss = float(0.5 * (err**2).sum(1).mean())
    return grads_w + grads_b, loss
