"""Fuzzing with hypothesis: the netlist writer and the data loaders.

Netlist writer: for random layered and graph networks, inputs from the whole float range, batches,
nudging forms and node names, to_netlist either refuses with NetworkError/InputError or writes a
netlist that an independent reader (below, not the package's) finds well formed: one element per
name and per conductance, exactly 1/G ohms, every source value equal to the input bit for bit, no two
network nodes merged into one SPICE node (ngspice lower-cases names). A sample of them runs in
`ngspice -b` and must print every free node.

Data loaders: random bytes, truncations and bit flips of a valid IDX file, and random .npz archives
either load consistent arrays or raise DataError; nothing else escapes.
"""
import gzip
import io
import re
import string

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from eqprop.circuits import DiodeClamp, GraphNetwork, InputError, NetworkError, ShockleyDiode, layered
from eqprop.learning.data import DataError, load_arrays, read_idx
from eqprop.netlists import to_netlist
from test_circuits_properties import graph_case, layered_case

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STAND_IN = ShockleyDiode(i_s=1e-12, n=0.02)
SPICE_GROUND = {"0", "gnd"}


# --- an independent reader of the netlists we write -------------------------------------------------
def read_netlist(text: str) -> dict:
    """Top-level elements of a netlist: {lower-case name: (nodes, value text)}; checks the deck's shape."""
    lines = text.splitlines()
    assert lines[0].startswith("*"), "first line must be the title comment"
    assert lines[-1] == ".end", "the deck must end with .end"
    assert text.isascii(), "ngspice reads ASCII"
    elements, depth, control = {}, 0, False
    for line in lines[1:-1]:
        s = line.strip()
        if not s or s.startswith("*"):
            continue
        low = s.lower()
        if low.startswith(".subckt"):
            depth += 1
            continue
        if low.startswith(".ends"):
            depth -= 1
            continue
        if low == ".control":
            control = True
            continue
        if low == ".endc":
            control = False
            continue
        if depth or control or s.startswith("."):
            continue
        tokens = s.split()
        name = tokens[0].lower()
        assert name[0] in "rvibegfxdc", f"unknown element {tokens[0]!r}"
        assert name not in elements, f"element {tokens[0]} is defined twice"
        n_nodes = {"r": 2, "v": 2, "i": 2, "b": 2, "c": 2, "g": 4, "e": 4, "f": 2, "d": 2}.get(name[0])
        if name[0] == "x":  # a subcircuit instance: nodes up to the subcircuit name (or 'params:')
            end = tokens.index("params:") - 1 if "params:" in tokens else len(tokens) - 1
            elements[name] = ([t.lower() for t in tokens[1:end]], " ".join(tokens[end:]))
        else:
            elements[name] = ([t.lower() for t in tokens[1:1 + n_nodes]], " ".join(tokens[1 + n_nodes:]))
    assert depth == 0 and not control, "unbalanced .subckt/.ends or .control/.endc"
    return elements


def source_values(value: str, batch: int) -> list:
    """The value(s) of a V source ('DC v') or a B source table ('V = pwl(v(sample), 0, v0, 1, v1, ...)')."""
    if value.startswith("DC "):
        return [float(value[3:])]
    m = re.fullmatch(r"V = pwl\(v\(sample\), (.*)\)", value)
    assert m, f"unexpected source value {value!r}"
    nums = [t.strip() for t in m.group(1).split(",")]
    assert [int(t) for t in nums[0::2]] == list(range(batch))
    return [float(t) for t in nums[1::2]]


def check_netlist(net, x, nl) -> None:
    graph = net.to_graph() if hasattr(net, "to_graph") else net
    g = graph.graph
    elements = read_netlist(nl.text)
    nodes = {str(n).lower() for n in g.nodes}
    assert len(nodes) == g.number_of_nodes(), "two network nodes differ only in case: one SPICE node"
    assert not nodes & SPICE_GROUND, "a network node would be ground"
    # Every plain conductance is exactly one resistor of 1/G ohms between its two nodes.
    resistors = {tuple(sorted(n)): float(v) for name, (n, v) in elements.items() if name.startswith("r_")
                 and not name.startswith("r_nudge")}
    plain = [(u, v, d["g"]) for u, v, d in g.edges(data=True) if "gain" not in d]
    amplified = [d for _, _, d in g.edges(data=True) if "gain" in d]
    assert len(resistors) == len(plain) + len(amplified), "one resistor per conductance"
    for u, v, gval in plain:
        assert resistors[tuple(sorted((str(u).lower(), str(v).lower())))] == 1.0 / gval
    # Nodes the writer adds (amplifier outputs, rails, targets, the sample sweep) are none of the network's.
    own_sources = {f"v_{n}".lower() for n in graph.sources} | {f"b_{n}".lower() for n in graph.sources}
    for name, (n, _) in elements.items():
        if name in own_sources:
            continue
        added = {"x_amp": n[1:2], "x_neuron": n[1:3], "v_rail": n[:1], "v_target": n[:1], "r_nudge": n[1:2],
                 "v_sample": n[:1]}
        for prefix, extra in added.items():
            if name.startswith(prefix):
                assert not set(extra) & nodes, f"{name} puts a node of its own on network node(s) {set(extra) & nodes}"
    # Every input source holds sign * x[feature], bit for bit, for every sample.
    batch = x.shape[0]
    for n in graph.sources:
        d = g.nodes[n]
        key = ("b_" if d["role"] == "input" and batch > 1 else "v_") + str(n).lower()
        src_nodes, value = elements[key]
        assert src_nodes == [str(n).lower(), "0"]
        want = d["sign"] * x[:, d["feature"]] if d["role"] == "input" else [d["voltage"]]
        np.testing.assert_array_equal(source_values(value, batch if d["role"] == "input" else 1), want)
    # Free nodes are what the runner reads back, all printed, none a source.
    assert [f.lower() for f in nl.free_nodes] == [str(n).lower() for n in graph.free_nodes]
    printed = re.search(r"^print (.*)$", nl.text, re.M)
    assert printed and printed.group(1).split() == [f"v({n})" for n in nl.free_nodes]


# --- netlist writer ------------------------------------------------------------------------------
@st.composite
def inputs(draw, n_features):
    """Any finite doubles (subnormals, 1e300, -0.0 ...), and sometimes one NaN or inf among them."""
    batch = draw(st.integers(1, 4))
    special = st.sampled_from([0.0, -0.0, 5e-324, -1e-300, 1e300, 1.0 / 3.0, 123456789.123456789])
    finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
    values = draw(st.lists(st.one_of(finite, special), min_size=batch * n_features, max_size=batch * n_features))
    x = np.array(values, dtype=float).reshape(batch, n_features)
    if draw(st.integers(0, 4)) == 0:
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


@FUZZ
@given(case=st.one_of(layered_case(), graph_case()), data=st.data(),
       nudge=st.sampled_from(["current", "conductance"]), beta=st.sampled_from([0.0, 1e-7, -1e-7, 2.5e-6]))
def test_netlist_writer_refuses_or_writes_a_well_formed_deck(case, data, nudge, beta):
    net = case[0]
    x = data.draw(inputs(net.n_features))
    y = np.zeros((x.shape[0], net.n_targets)) + data.draw(st.floats(-0.3, 0.3))
    try:
        nl = to_netlist(net, x, y if beta else None, beta, nudge=nudge, ideal_diode=STAND_IN)
    except (NetworkError, InputError) as exc:
        event(f"refused: {type(exc).__name__}")
        message = str(exc)
        assert len(message) > 20  # says what is wrong
        if not np.isfinite(x).all():
            return  # NaN/inf inputs must be refused; that is this case
        assert nudge == "conductance" and beta < 0 or "readout" in message, message
        return
    assert np.isfinite(x).all(), "a NaN or inf input was written into a netlist"
    event("written")
    check_netlist(net, x, nl)


NAME_CHARS = string.ascii_letters + string.digits + "_" + " .-+()=*/\\é\t"


def four_node_network(inp, bias, hid, out) -> GraphNetwork:
    """input -> hidden <- bias, hidden -(amplifier)-> output <- bias; diode clamps on hidden and output."""
    g = nx.Graph()
    g.add_node(inp, role="input", feature=0, sign=1.0)
    g.add_node(bias, role="bias", voltage=0.5)
    clamp = DiodeClamp(ShockleyDiode(), -0.2, 0.3)
    g.add_node(hid, role="hidden", neuron=clamp)
    g.add_node(out, role="output", readout=(0, 1.0), neuron=clamp)
    g.add_edge(inp, hid, g=1e-6)
    g.add_edge(bias, hid, g=2e-6)
    g.add_edge(hid, out, g=3e-6, gain=2.0, driver=hid)
    g.add_edge(bias, out, g=1e-6)
    return GraphNetwork(g, n_features=1, readout="nodes")


NAME = st.one_of(st.from_regex(r"[A-Za-z0-9_]{1,7}", fullmatch=True), st.text(NAME_CHARS, min_size=1, max_size=6),
                 st.sampled_from(["gnd", "GND", "0", "sample", "rail_hi", "rail_lo", "target0", "h_a", "a__b", "b__c"]))


@FUZZ
@example(names=["x", "b", "A", "a"])  # differ only in case: ngspice would merge them
@example(names=["x", "b", "h", "h_a"])  # h_a is also the output node of the amplifier driven by h
@example(names=["a", "a__b", "b__c", "c"])  # resistors a-b__c and a__b-c would both be R_a__b__c
@example(names=["x", "b", "rail_hi", "y"])  # the writer's rail node
@given(names=st.lists(NAME, min_size=4, max_size=4, unique=True))
def test_node_names_are_refused_or_kept_distinct_in_spice(names):
    try:
        net = four_node_network(*names)
    except NetworkError:
        event("refused by the network")
        return
    x = np.array([[0.3]])
    try:
        nl = to_netlist(net, x, np.array([[0.1]]), 1e-7)
    except NetworkError as exc:
        assert "node" in str(exc) and "rename" in str(exc) or "letters, digits" in str(exc), str(exc)
        event("refused by the writer")
        return
    event("written")
    check_netlist(net, x, nl)


SPICE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.spice
@SPICE
@given(case=st.one_of(layered_case(), graph_case()), batch=st.integers(1, 3), beta=st.sampled_from([0.0, 1e-7]))
def test_written_netlists_run_in_ngspice_to_the_native_equilibrium(case, batch, beta, tmp_path_factory):
    from eqprop.circuits import solve
    from eqprop.netlists.batch import free_voltages, run_file

    net, x, y, _ = case
    x, y = x[:batch], y[:batch]
    nl = to_netlist(net, x, y if beta else None, beta, ideal_diode=STAND_IN)
    path = nl.write(tmp_path_factory.mktemp("fuzz") / "deck.cir")
    volts = free_voltages(run_file(path, timeout=60), nl.free_nodes)
    assert volts.shape == (len(x), len(nl.free_nodes)) and np.isfinite(volts).all()
    if "ideal" not in nl.text:  # ideal diodes are written as a stand-in Shockley model, not the same circuit
        native = solve(net, x, y if beta else None, beta, tol=1e-13).voltages
        assert np.abs(volts - native).max() < 1e-6  # a microvolt


# --- data loaders ---------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def loads_or_data_error(fn, *args):
    try:
        return fn(*args)
    except DataError as exc:
        assert str(exc)
        return None


VALID_IDX = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


@FUZZ
@given(blob=st.one_of(st.binary(max_size=64), st.builds(lambda k: VALID_IDX[:k], st.integers(0, len(VALID_IDX))),
                      st.builds(lambda i, b: VALID_IDX[:i] + bytes([b]) + VALID_IDX[i + 1:],
                                st.integers(0, len(VALID_IDX) - 1), st.integers(0, 255)),
                      st.builds(lambda shape: bytes([0, 0, 8, len(shape)]) +
                                b"".join(s.to_bytes(4, "big") for s in shape),
                                st.lists(st.integers(0, 2**32 - 1), max_size=4))),
       gz=st.booleans())
def test_read_idx_returns_the_array_the_header_describes_or_a_data_error(tmp_path_factory, blob, gz):
    path = tmp_path_factory.mktemp("idx") / ("f.idx.gz" if gz else "f.idx")
    path.write_bytes(gzip.compress(blob) if gz and len(blob) % 3 else blob)  # some .gz files are not gzip
    arr = loads_or_data_error(read_idx, path)
    if arr is not None:
        assert blob[:3] == b"\x00\x00\x08" and arr.ndim == blob[3]
        assert idx_bytes(arr) == blob  # what was read is exactly what the file holds


@st.composite
def npz_contents(draw):
    arrays = {}
    for key in draw(st.lists(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]), unique=True)):
        dtype = draw(st.sampled_from(["uint8", "int64", "float32", "float64", "bool", "U3", "complex64"]))
        shape = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
        values = draw(st.lists(st.one_of(st.integers(-300, 300), st.sampled_from([np.nan, np.inf])),
                               min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        with np.errstate(all="ignore"):
            try:
                arrays[key] = np.array(values, dtype=float).astype(dtype).reshape(shape)
            except (ValueError, OverflowError):
                arrays[key] = np.zeros(shape, dtype=dtype)
    return arrays


@FUZZ
@given(contents=npz_contents(), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_load_arrays_gives_consistent_arrays_or_a_data_error(tmp_path_factory, contents, cut):
    buf = io.BytesIO()
    np.savez(buf, **contents)
    blob = buf.getvalue() if cut is None else buf.getvalue()[:cut]
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    path.write_bytes(blob)
    arrays = loads_or_data_error(load_arrays, path)
    if arrays is not None:
        for split in ("train", "test"):
            xs, ys = arrays[f"x_{split}"], arrays[f"y_{split}"]
            assert len(xs) == len(ys) and ys.ndim == 1 and xs.ndim >= 2
            assert np.issubdtype(ys.dtype, np.integer) and (len(ys) == 0 or 0 <= ys.min() <= ys.max() <= 9)
            assert xs.size == 0 or (np.isfinite(xs).all() and 0 <= xs.min() and xs.max() <= 255)
