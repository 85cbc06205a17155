"""Bad input: each mistake raises an error whose message names the problem."""
import networkx as nx
import numpy as np
import pytest

from eqprop.circuits import (ConvergenceError, DiodeClamp, GraphNetwork, InputError, LayeredNetwork, NetworkError,
                             layered, solve)


@pytest.fixture
def net():
    return layered([8, 6, 4], seed=0)


def test_nan_input_names_sample_and_column(net):
    x = np.zeros((3, 4))
    x[2, 1] = np.nan
    with pytest.raises(InputError, match=r"NaN/inf.*sample 2, column 1"):
        solve(net, x)


def test_inf_target(net):
    y = np.zeros((1, 2))
    y[0, 0] = np.inf
    with pytest.raises(InputError, match="y \\(targets\\) holds NaN/inf"):
        solve(net, np.zeros((1, 4)), y, beta=1e-7)


def test_wrong_input_shape(net):
    with pytest.raises(InputError, match=r"shape \(batch, 4\)"):
        solve(net, np.zeros((2, 5)))


@pytest.mark.parametrize("x", ["abc", [[0.1, 0.2], [0.3]], [{"a": 1}] * 4])
def test_inputs_that_are_not_numbers_are_refused_in_one_line(net, x):
    with pytest.raises(InputError, match=r"^x must be an array of numbers, \(batch, 4\) or \(4,\): "):
        solve(net, x)


@pytest.mark.parametrize("max_iter", [0, -1, 1.5, True, "10"])
def test_a_sweep_count_that_is_not_a_positive_whole_number_is_refused(net, max_iter):
    with pytest.raises(InputError, match="^max_iter must be a whole number of sweeps >= 1"):
        solve(net, np.zeros((1, 4)), max_iter=max_iter)
    assert solve(net, np.zeros((1, 4)), max_iter=np.int64(100)).iterations <= 100


def test_wrong_target_batch(net):
    with pytest.raises(InputError, match="y has 1 samples but x has 2"):
        solve(net, np.zeros((2, 4)), np.zeros((1, 2)), beta=1e-7)


def test_nudge_without_targets(net):
    with pytest.raises(InputError, match="needs targets y"):
        solve(net, np.zeros((1, 4)), beta=1e-7)


def test_init_of_wrong_shape(net):
    with pytest.raises(InputError, match=r"init must have shape \(1, 10\)"):
        solve(net, np.zeros((1, 4)), init=np.zeros((1, 3)))


def test_negative_conductance_names_location(net):
    w = [a.copy() for a in net.weights]
    w[1][2, 3] = -1e-6
    with pytest.raises(NetworkError, match=r"weights\[1\]\[2, 3\].*negative"):
        LayeredNetwork(net.sizes, w, net.biases, net.neurons, net.gains)


def test_nan_conductance(net):
    w = [a.copy() for a in net.weights]
    w[0][0, 0] = np.nan
    with pytest.raises(NetworkError, match=r"weights\[0\] holds NaN"):
        LayeredNetwork(net.sizes, w, net.biases, net.neurons, net.gains)


def test_unknown_diode_model():
    with pytest.raises(NetworkError, match="unknown diode model 'zener'"):
        layered([4, 2], diode="zener")


def test_rails_in_wrong_order():
    with pytest.raises(NetworkError, match="v_low < v_high"):
        DiodeClamp("ideal", 1.0, -1.0)


def test_floating_layered_node():
    net = layered([4, 3, 2], seed=0)
    w = [a.copy() for a in net.weights]
    b = [a.copy() for a in net.biases]
    w[0][:, 1] = 0
    w[1][1, :] = 0
    b[0][:, 1] = 0
    with pytest.raises(NetworkError, match="node 1 of layer 1 is floating"):
        LayeredNetwork(net.sizes, w, b, net.neurons, net.gains)


def _graph():
    g = nx.Graph()
    g.add_node("x", role="input", feature=0, sign=1.0)
    g.add_node("o", role="output", readout=(0, 1.0))
    g.add_edge("x", "o", g=1e-6)
    return g


def test_unknown_role():
    g = _graph()
    g.add_node("m", role="memristor")
    with pytest.raises(NetworkError, match="unknown role 'memristor'"):
        GraphNetwork(g, 1, readout="nodes")


def test_unknown_device_on_edge():
    g = _graph()
    g.edges["x", "o"]["capacitance"] = 1e-12
    with pytest.raises(NetworkError, match="unknown device attributes \\['capacitance'\\]"):
        GraphNetwork(g, 1, readout="nodes")


def test_unknown_neuron_device():
    g = _graph()
    g.nodes["o"]["neuron"] = "sigmoid"
    with pytest.raises(NetworkError, match="unknown device 'sigmoid'"):
        GraphNetwork(g, 1, readout="nodes")


def test_zero_conductance_edge():
    g = _graph()
    g.edges["x", "o"]["g"] = 0.0
    with pytest.raises(NetworkError, match="conductance 0.0.*must be positive"):
        GraphNetwork(g, 1, readout="nodes")


def test_disconnected_node():
    g = _graph()
    g.add_node("h", role="hidden")
    g.add_node("k", role="hidden")
    g.add_edge("h", "k", g=1e-6)
    with pytest.raises(NetworkError, match="2 node\\(s\\) have no resistive path to a source"):
        GraphNetwork(g, 1, readout="nodes")


def test_unknown_method(net):
    with pytest.raises(NetworkError, match="unknown method 'spice'"):
        solve(net, np.zeros((1, 4)), method="spice")


def test_not_converging_names_sample(net):
    x = np.random.default_rng(0).uniform(0, 1, (3, 4))
    with pytest.raises(ConvergenceError, match="did not converge in 1 sweeps.*sample"):
        solve(net, x, max_iter=1, tol=1e-15)


def test_too_negative_beta_is_refused(net):
    with pytest.raises(InputError, match="too negative"):
        solve(net, np.zeros((1, 4)), np.zeros((1, 2)), beta=-1.0)


def test_amplifier_loop_without_energy_is_refused():
    g = _graph()
    g.add_node("a", role="hidden")
    g.add_node("b", role="hidden")
    g.add_edge("x", "a", g=1e-6)
    g.add_edge("a", "b", g=1e-6, gain=2.0, driver="a")
    g.add_edge("b", "o", g=1e-6)
    g.add_edge("o", "a", g=1e-6)  # loop a -> b -> o -> a with gain product 2
    with pytest.raises(NetworkError, match="no energy function"):
        GraphNetwork(g, 1, readout="nodes")


@pytest.mark.parametrize("value,match", [(np.nan, r"weights\[1\] holds NaN/inf"), (np.inf, r"weights\[1\] holds NaN/inf"),
                                         (-np.inf, r"weights\[1\] holds NaN/inf"), (-1e-6, r"weights\[1\]\[0, 0\] = -1e-06 S is negative"),
                                         (1.7e308, "sum past the float range")])
def test_bad_conductances_are_named_before_a_solve(value, match):
    """validate() checks each conductance array in two passes (its minimum, its sums) and names the fault;
    +inf shows only in the sums, and finite values whose sum overflows get their own message."""
    from eqprop.circuits import NetworkError, layered, solve

    net = layered([8, 6, 4], seed=0)
    net.weights[1][0, 0] = value
    net.weights[1][1, 0] = value if value == 1.7e308 else net.weights[1][1, 0]
    with pytest.raises(NetworkError, match=match):
        solve(net, np.ones((2, 4)))


def test_validate_returns_the_node_totals_the_solver_uses():
    from eqprop.circuits import layered
    from eqprop.circuits.energy import node_conductance

    net = layered([8, 6, 6, 4], seed=1, hidden_pairs=True)
    for a, b in zip(net.validate(), node_conductance(net)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_bad_inputs_are_named_through_the_drive_check(value):
    """A first layer narrower than x: the solver checks x @ (G+ - G-) instead of x, and a NaN/inf still gets
    the message naming its sample and column, also where the feature's two conductances cancel (0 x inf)."""
    from eqprop.circuits import layered, solve

    net = layered([40, 6, 4], seed=0)
    assert net.free_sizes[0] < net.n_features
    net.weights[0][20:, 3] = net.weights[0][:20, 3]  # feature 3's signed weight is 0 for every node
    for col in (3, 7):
        x = np.ones((4, 20))
        x[2, col] = value
        with pytest.raises(InputError, match=rf"NaN/inf \(first at sample 2, column {col}\)"):
            solve(net, x)
