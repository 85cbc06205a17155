"""Circuits solved by hand: the native solvers must reproduce them."""
import networkx as nx
import numpy as np
import pytest
from scipy.optimize import brentq

from eqprop.circuits import (DiodeClamp, GraphNetwork, LayeredNetwork, ShockleyDiode, energy, kcl_residual, layered,
                             solve, thermal_voltage)

METHODS = ["bcd", "newton"]


def divider(g_in, g_bias, vb=1.0, clamp=None):
    """One source x through g_in to a node tied through g_bias to +vb: V = (g_in x + g_bias vb) / (g_in + g_bias)."""
    return LayeredNetwork(sizes=(1, 1), weights=[[[g_in]]], biases=[[[g_bias], [0.0]]], neurons=[clamp],
                          gains=(1.0,), bias_voltage=vb, input_pairs=False, readout="nodes")


@pytest.mark.parametrize("method", METHODS)
def test_voltage_divider(method):
    net = divider(3e-6, 1e-6)
    x = np.array([[0.0], [0.4], [-2.0]])
    eq = solve(net, x, method=method, tol=1e-13)
    expected = (3e-6 * x + 1e-6 * 1.0) / 4e-6
    np.testing.assert_allclose(eq.voltages, expected, atol=1e-12)
    assert eq.residual < 1e-17


@pytest.mark.parametrize("method", METHODS)
def test_ideal_diode_clamps_at_rail(method):
    net = divider(3e-6, 1e-6, clamp=DiodeClamp("ideal", -0.5, 0.5))
    x = np.array([[2.0], [0.0], [-2.0]])
    eq = solve(net, x, method=method, tol=1e-13)
    np.testing.assert_allclose(eq.voltages[:, 0], [0.5, 0.25, -0.5], atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_shockley_clamp_matches_scalar_root(method):
    diode = ShockleyDiode(i_s=1e-14, n=1.0)
    net = divider(1e-3, 1e-9, vb=0.0, clamp=DiodeClamp(diode, -0.3, 0.3))
    x = np.array([[2.0], [0.1], [-1.5]])
    eq = solve(net, x, method=method, tol=1e-14)
    vt = thermal_voltage()
    assert abs(vt - 0.025865) < 1e-6
    for xi, v in zip(x[:, 0], eq.voltages[:, 0]):
        def kcl(u):
            i_up = 1e-14 * np.expm1((u - 0.3) / vt) + 1e-12 * (u - 0.3)
            i_down = 1e-14 * np.expm1((-0.3 - u) / vt) + 1e-12 * (-0.3 - u)
            return 1e-3 * (u - xi) + 1e-9 * u + i_up - i_down
        root = brentq(kcl, -5, 5, xtol=1e-15)
        assert abs(v - root) < 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_two_free_nodes_by_hand(method):
    """in --g1-- h --g2-- out --g3-- (bias at -vb), linear: a 2x2 system."""
    g1, g2, g3, vb = 2e-6, 5e-6, 1e-6, 1.0
    net = LayeredNetwork(sizes=(1, 1, 1), weights=[[[g1]], [[g2]]], biases=[[[0.0], [0.0]], [[0.0], [g3]]],
                         neurons=[None, None], gains=(1.0, 1.0), bias_voltage=vb, input_pairs=False, readout="nodes")
    x = 0.7
    A = np.array([[g1 + g2, -g2], [-g2, g2 + g3]])
    b = np.array([g1 * x, -g3 * vb])
    expected = np.linalg.solve(A, b)
    eq = solve(net, [[x]], method=method, tol=1e-14)
    np.testing.assert_allclose(eq.voltages[0], expected, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_amplifier_kcl_by_hand(method):
    """x --g1-- h =[amp a]=> a*V_h --g2-- out --g3-- (-vb); the amp reflects the current divided by a."""
    g1, g2, g3, vb, a, x = 2e-6, 5e-6, 1e-6, 1.0, 3.0, 0.4
    net = LayeredNetwork(sizes=(1, 1, 1), weights=[[[g1]], [[g2]]], biases=[[[0.0], [0.0]], [[0.0], [g3]]],
                         neurons=[None, None], gains=(1.0, a), bias_voltage=vb, input_pairs=False, readout="nodes")
    # KCL at h: g1 (V_h - x) + (g2 / a)(a V_h - V_o) = 0 ; at out: g2 (V_o - a V_h) + g3 (V_o + vb) = 0
    A = np.array([[g1 + g2, -g2 / a], [-g2 * a, g2 + g3]])
    b = np.array([g1 * x, -g3 * vb])
    expected = np.linalg.solve(A, b)
    eq = solve(net, [[x]], method=method, tol=1e-14)
    np.testing.assert_allclose(eq.voltages[0], expected, atol=1e-12)


def test_nudging_pulls_outputs_toward_targets():
    net = layered([8, 6, 4], seed=3, gain=2.0)
    x = np.random.default_rng(0).uniform(0, 1, (4, 4))
    y = np.array([[0.1, -0.1]] * 4)
    free = solve(net, x)
    nudged = solve(net, x, y, beta=1e-6, init=free)
    before = np.abs(free.prediction - y)
    after = np.abs(nudged.prediction - y)
    assert (after < before).all()
    assert nudged.residual < 1e-16


@pytest.mark.parametrize("diode", ["ideal", "shockley", "pwl"])
def test_equilibrium_is_energy_minimum(diode):
    net = layered([10, 8, 6, 4], seed=1, gain=2.0, diode=diode, rails=(-0.02, 0.02))
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (3, 5))
    y = rng.uniform(-0.05, 0.05, (3, 2))
    eq = solve(net, x, y, beta=2e-7, tol=1e-13)
    layers = eq.layers
    src = net.encode_inputs(x)
    e0 = energy(net, src, layers, y, 2e-7)
    for _ in range(50):
        pert = [v + rng.normal(0, 1e-4, v.shape) for v in layers]
        if diode == "ideal":  # stay inside the admissible box, where the energy is finite
            pert[:-1] = [np.clip(v, -0.02, 0.02) for v in pert[:-1]]
        assert (energy(net, src, pert, y, 2e-7) >= e0 - 1e-24).all()
    residual = kcl_residual(net, src, layers, y, 2e-7)
    assert max(np.abs(r).max() for r in residual) < 1e-15


def test_graph_network_from_scratch():
    """A non-layered graph built by hand: a triangle of free nodes between two sources."""
    g = nx.Graph()
    g.add_node("x", role="input", feature=0, sign=1.0)
    g.add_node("gnd", role="bias", voltage=0.0)
    for n in ("a", "b"):
        g.add_node(n, role="hidden")
    g.add_node("o", role="output", readout=(0, 1.0))
    g.add_edge("x", "a", g=1.0)
    g.add_edge("a", "b", g=1.0)
    g.add_edge("b", "o", g=1.0)
    g.add_edge("a", "o", g=1.0)
    g.add_edge("o", "gnd", g=1.0)
    net = GraphNetwork(g, n_features=1, readout="nodes")
    eq = solve(net, [[1.0]], tol=1e-14)
    # By symmetry of the hand solution: a = 3/5, b = 2/5... solve the 3x3 Laplacian directly
    L = np.array([[3, -1, -1], [-1, 2, -1], [-1, -1, 3]], float)
    expected = np.linalg.solve(L, [1.0, 0.0, 0.0])
    order = eq.info["free_nodes"]
    np.testing.assert_allclose(eq.voltages[0], expected[[["a", "b", "o"].index(n) for n in order]], atol=1e-12)
