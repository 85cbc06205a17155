"""Property tests: random layered and random non-layered networks satisfy KCL and the diode laws, and the
two solver paths (block coordinate descent, sparse Newton / active set) agree."""
import networkx as nx
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eqprop.circuits import DiodeClamp, GraphNetwork, NetworkError, ShockleyDiode, layered, solve

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIODES = st.sampled_from([None, "ideal", "shockley", "pwl"])


def graph_kcl(net: GraphNetwork, x, v, beta=0.0, y=None):
    """Net current leaving every free node, computed edge by edge from the graph (independent of the solver)."""
    g = net.graph
    free = list(v.keys())
    volt = dict(v)
    for n in net.sources:
        d = g.nodes[n]
        volt[n] = d["sign"] * x[d["feature"]] if d["role"] == "input" else d["voltage"]
    out = {n: 0.0 for n in free}
    for a, b, d in g.edges(data=True):
        if "gain" in d:
            drv = d["driver"]
            oth = b if drv == a else a
            i = d["g"] * (d["gain"] * volt[drv] - volt[oth])  # current from the amp into `oth`
            if oth in out:
                out[oth] -= i
            if drv in out:
                out[drv] += i / d["gain"]
        else:
            for p, q in ((a, b), (b, a)):
                if p in out:
                    out[p] += d["g"] * (volt[p] - volt[q])
    if beta:
        pred = np.zeros(net.n_targets)
        for n in net.output_nodes:
            k, s = g.nodes[n]["readout"]
            pred[k] += s * volt[n]
        for n in net.output_nodes:
            k, s = g.nodes[n]["readout"]
            out[n] -= beta * s * (y[k] - pred[k])
    for n in free:
        clamp = g.nodes[n].get("neuron")
        if clamp is not None and clamp.diode.kind != "ideal":
            out[n] += float(clamp.current(np.array(volt[n])))
    return out


def check_diode_laws(net, volts, currents, tol_a):
    for n, v in volts.items():
        clamp = net.graph.nodes[n].get("neuron")
        i = currents[n]
        if clamp is not None and clamp.diode.kind == "ideal":
            assert clamp.v_low - 1e-12 <= v <= clamp.v_high + 1e-12, f"{n} outside rails: {v}"
            if v >= clamp.v_high - 1e-12:
                assert i <= tol_a  # current arrives and leaves through the upper diode
            elif v <= clamp.v_low + 1e-12:
                assert i >= -tol_a
            else:
                assert abs(i) <= tol_a
        else:
            assert abs(i) <= tol_a, f"KCL violated at {n}: {i}"


@st.composite
def layered_case(draw):
    n_hidden = draw(st.integers(0, 2))
    sizes = [2 * draw(st.integers(1, 4))] + [draw(st.integers(1, 5)) for _ in range(n_hidden)] + [2 * draw(st.integers(1, 3))]
    diode = draw(DIODES)
    gain = draw(st.sampled_from([1.0, 2.0, 4.0]))
    readout = draw(st.sampled_from(["pairs", "nodes"]))
    seed = draw(st.integers(0, 10_000))
    net = layered(sizes, diode=diode, rails=(-0.1, 0.1), gain=gain, g_range=(1e-7, 2e-6), seed=seed,
                  readout=readout, output_diodes=draw(st.booleans()))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (3, net.n_features))
    y = rng.uniform(-0.2, 0.2, (3, net.n_targets))
    beta = draw(st.sampled_from([0.0, 1e-7, -1e-7, 1e-6]))
    return net, x, y, beta


@SETTINGS
@given(layered_case())
def test_bcd_and_generic_agree_on_layered(case):
    net, x, y, beta = case
    bcd = solve(net, x, y, beta=beta, method="bcd", tol=1e-13, max_iter=20_000)
    gen = solve(net, x, y, beta=beta, method="newton", tol=1e-13)
    assert np.abs(bcd.voltages - gen.voltages).max() < 1e-9
    assert bcd.residual < 1e-15 and gen.residual < 1e-15
    # Independent KCL check on the graph view of the same circuit.
    graph = net.to_graph()
    names = net.free_node_names()
    for s in range(len(x)):
        volts = dict(zip(names, bcd.voltages[s]))
        currents = graph_kcl(graph, x[s], volts, beta, y[s])
        check_diode_laws(graph, volts, currents, 1e-14)


@st.composite
def graph_case(draw):
    seed = draw(st.integers(0, 100_000))
    rng = np.random.default_rng(seed)
    n_free = draw(st.integers(2, 8))
    n_feat = draw(st.integers(1, 3))
    g = nx.Graph()
    for k in range(n_feat):
        g.add_node(f"x{k}", role="input", feature=k, sign=1.0)
    g.add_node("vb", role="bias", voltage=float(rng.uniform(-1, 1)))
    kind = draw(DIODES)
    clamp = None if kind is None else DiodeClamp(ShockleyDiode(i_s=1e-12) if kind == "shockley" else kind, -0.2, 0.3)
    free = [f"n{i}" for i in range(n_free)]
    n_out = draw(st.integers(1, min(3, n_free)))
    for i, n in enumerate(free):
        is_out = i >= n_free - n_out
        attrs = dict(role="output", readout=(i - (n_free - n_out), 1.0)) if is_out else dict(role="hidden")
        g.add_node(n, neuron=clamp if draw(st.booleans()) else None, **attrs)
    sources = [f"x{k}" for k in range(n_feat)] + ["vb"]
    everything = free + sources
    for _ in range(draw(st.integers(n_free, 3 * n_free))):
        a, b = rng.choice(everything, 2, replace=False)
        if a in sources and b in sources:
            continue
        attrs = {"g": float(rng.uniform(1e-7, 1e-5))}
        if draw(st.booleans()) and a in free:
            attrs.update(gain=float(rng.choice([0.5, 2.0, 3.0])), driver=str(a))
        g.add_edge(str(a), str(b), **attrs)
    for comp in list(nx.connected_components(g)):  # tie every floating component to a source
        if not any(n in sources for n in comp):
            g.add_edge(sorted(comp)[0], str(rng.choice(sources)), g=float(rng.uniform(1e-7, 1e-5)))
    try:
        net = GraphNetwork(g, n_features=n_feat, readout="nodes")
    except NetworkError as e:  # random amplifier loops often have no energy function: not an EqProp circuit
        assume("no energy function" not in str(e))
        raise
    x = rng.uniform(-1, 1, (2, n_feat))
    y = rng.uniform(-0.3, 0.3, (2, net.n_targets))
    beta = draw(st.sampled_from([0.0, 1e-6]))
    return net, x, y, beta


@SETTINGS
@given(graph_case())
def test_generic_solver_satisfies_kcl_on_random_graphs(case):
    net, x, y, beta = case
    eq = solve(net, x, y, beta=beta, tol=1e-13)
    for s in range(len(x)):
        volts = dict(zip(eq.info["free_nodes"], eq.voltages[s]))
        currents = graph_kcl(net, x[s], volts, beta, y[s])
        check_diode_laws(net, volts, currents, 1e-14)
