"""Crossbar wire resistance: a layered network laid out as crossbars whose row and column wires are resistive.

In ``LayeredNetwork`` every conductance joins its two nodes directly. On a chip, connection c is a crossbar: each
driver (an input source, a bias source, an amplifier output; with differential amplifiers the inverting output
drives a row of its own) drives a row wire from one end, each node of layer c+1 collects a column wire at one end,
and conductance G_ij sits where row i crosses column j. Between neighbouring crossings a wire is a resistor
(``r_wire`` ohms per segment), so the farther a crossing from its driver and from its neuron, the more IR drop its
current sees, and the columns of one row load each other through the shared row wire.

``wired(net, r_wire)`` returns that circuit as a ``GraphNetwork``: the neurons, sources and readout of
``net.to_graph()``, every crosspoint a plain resistor between its two wire nodes, every wire segment a resistor of
``r_wire``, and each amplified row's first segment the amplifier's output conductance (the amplifier drives the
row, and its backward current is the whole row's current over its gain, as in the layered model). It is solved by
the graph solver (``circuits.solve``, sparse modified nodal analysis) and written to ngspice by the netlist writer
like any graph. As ``r_wire`` goes to 0 its equilibrium goes to the layered network's (tested); crossings are
placed in the order of the rows and columns of ``weights[c]`` and the biases' two rows come after the drivers'.
"""
from __future__ import annotations

import numpy as np

from .errors import NetworkError
from .network import GraphNetwork, LayeredNetwork


def wired(net: LayeredNetwork, r_wire: float, validate: bool = True) -> GraphNetwork:
    """``net`` as crossbars with ``r_wire`` ohms per wire segment between neighbouring crossings (> 0).
    ``validate=False`` leaves the graph's check to its first solve or ``unchanged()`` block (the wired backend,
    which lays the network out for every step: the check of a 30,000-node graph takes about half a second)."""
    if isinstance(r_wire, bool) or not isinstance(r_wire, (int, float, np.floating)) or not np.isfinite(r_wire) \
            or not r_wire > 0:
        raise NetworkError(f"wire resistance must be a positive number of ohms per segment, got {r_wire!r}; for "
                           "ideal wires solve the network itself")
    check_wirable(net)
    base = net.to_graph(validate=False)  # the wired graph is checked instead: a fault of this one is a fault of it
    g = base.graph
    g_wire = 1.0 / float(r_wire)
    layers = _layer_names(net, g)
    g.remove_edges_from(list(g.edges()))  # every conductance is re-laid as a crossing
    for c in range(net.n_connections):
        drivers = _drivers(net, c, layers[c])
        w = np.asarray(net.weights[c], dtype=float)
        rows = [(name, gain, inverting, w[r]) for r, (name, gain, inverting) in enumerate(drivers)]
        rows += [(bname, None, False, np.asarray(net.biases[c][b], dtype=float))
                 for b, bname in enumerate(("biasp", "biasn"))]
        cols = layers[c + 1]
        for r, (driver, gain, inverting, conductances) in enumerate(rows):
            prev = driver
            for j, col in enumerate(cols):
                node = f"w{c}_{r}_{j}"
                g.add_node(node, role="hidden")
                if prev == driver and gain is not None:  # the amplifier drives the row's first segment
                    attrs = {("g_inv" if inverting else "g"): g_wire, "gain": gain, "driver": driver}
                else:
                    attrs = {"g": g_wire}
                g.add_edge(prev, node, **attrs)
                prev = node
                if conductances[j] > 0:
                    g.add_node(f"u{c}_{r}_{j}", role="hidden")
                    g.add_edge(node, f"u{c}_{r}_{j}", g=float(conductances[j]))
        for j, col in enumerate(cols):  # each column wire from the first row to its neuron
            chain = [f"u{c}_{r}_{j}" for r in range(len(rows))]
            for node in chain:
                if node not in g:  # no crossing there: the wire passes on
                    g.add_node(node, role="hidden")
            for a, b in zip(chain, chain[1:] + [col]):
                g.add_edge(a, b, g=g_wire)
    return GraphNetwork(g, n_features=net.n_features, readout=net.readout, validate=validate)


MAX_NODES = 1_000_000  # wired nodes per image: beyond, one image's sparse LU outgrows a workstation's time and memory


def check_wirable(net: LayeredNetwork) -> None:
    """Raises NetworkError where ``net`` cannot be laid out and solved as crossbars: its amplifiers must be ideal,
    and its wired circuit at most MAX_NODES nodes an image."""
    if not net.amplifier.ideal:
        raise NetworkError(f"wired crossbars take ideal amplifiers; this network has {net.amplifier.describe()}")
    nodes = wired_nodes(net)
    if nodes > MAX_NODES:
        raise NetworkError(f"{'-'.join(map(str, net.sizes))} laid out as crossbars is {nodes:,} nodes an image, beyond "
                           f"the {MAX_NODES:,} the sparse solve takes; use a smaller network (the wire load carries "
                           "over: docs/devices.md, *Wire resistance*)")


def wired_nodes(net: LayeredNetwork) -> int:
    """Nodes ``wired(net, r)`` adds per image: two per crossing (row and column wire), every row (drivers and the
    two bias rows) crossing every column."""
    return sum(2 * (w.shape[0] + b.shape[0]) * w.shape[1] for w, b in zip(net.weights, net.biases))


def _layer_names(net: LayeredNetwork, g) -> list:
    """The graph's node names per layer: the sources of layer 0 in row order, then each free layer's."""
    sources = [n for n, d in g.nodes(data=True) if d.get("role") == "input"]
    free = net.free_node_names()
    out, offset = [sources], 0
    for size in net.sizes[1:]:
        out.append(free[offset:offset + size])
        offset += size
    return out


def _drivers(net: LayeredNetwork, c: int, names: list) -> list:
    """(driver node, gain or None for a source, inverting) of each row of ``weights[c]``: rows n.. of a differential
    connection are driven by the inverting outputs of the same nodes."""
    pairs = c > 0 and net.hidden_pairs
    gain = float(net.gains[c]) if (net.gains[c] != 1.0 or pairs) else None
    rows = [(name, gain, False) for name in names]
    if pairs:
        rows += [(name, gain, True) for name in names]
    if len(rows) != net.weights[c].shape[0]:
        raise NetworkError(f"connection {c}: {net.weights[c].shape[0]} rows of conductances for {len(rows)} drivers")
    return rows


def neuron_voltages(graph_net: GraphNetwork, eq, net: LayeredNetwork) -> np.ndarray:
    """The equilibrium's voltages at ``net``'s free nodes (its neurons and outputs), in ``net``'s order, from a
    solve of ``wired(net, ...)``."""
    index = {n: i for i, n in enumerate(graph_net.free_nodes)}
    cols = [index[n] for n in net.free_node_names()]
    return np.asarray(eq.voltages)[:, cols]
