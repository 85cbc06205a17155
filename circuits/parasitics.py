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

from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from .errors import NetworkError
from .network import GraphNetwork, LayeredNetwork
from .solve_graph import CompiledGraph, compile_graph
from .solver import _solve_graph


def wired(net: LayeredNetwork, r_wire: float, c_wire: float | None = None) -> GraphNetwork:
    """``net`` as crossbars with ``r_wire`` ohms per wire segment between neighbouring crossings (> 0). ``c_wire``:
    the farads of each wire node to ground (a segment's capacitance), which transients give it
    (``netlists.Transient``); None: the transient's node capacitance, as every other node."""
    if isinstance(r_wire, bool) or not isinstance(r_wire, (int, float, np.floating)) or not np.isfinite(r_wire) \
            or not r_wire > 0:
        raise NetworkError(f"wire resistance must be a positive number of ohms per segment, got {r_wire!r}; for "
                           "ideal wires solve the network itself")
    if c_wire is not None and (isinstance(c_wire, bool) or not isinstance(c_wire, (int, float, np.floating))
                               or not np.isfinite(c_wire) or not c_wire > 0):
        raise NetworkError(f"wire capacitance must be a positive number of farads per segment, got {c_wire!r}")
    wire_node = {"role": "hidden"} if c_wire is None else {"role": "hidden", "capacitance": float(c_wire)}
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
                g.add_node(node, **wire_node)
                if prev == driver and gain is not None:  # the amplifier drives the row's first segment
                    attrs = {("g_inv" if inverting else "g"): g_wire, "gain": gain, "driver": driver}
                else:
                    attrs = {"g": g_wire}
                g.add_edge(prev, node, **attrs)
                prev = node
                if conductances[j] > 0:
                    g.add_node(f"u{c}_{r}_{j}", **wire_node)
                    g.add_edge(node, f"u{c}_{r}_{j}", g=float(conductances[j]))
        for j, col in enumerate(cols):  # each column wire from the first row to its neuron
            chain = [f"u{c}_{r}_{j}" for r in range(len(rows))]
            for node in chain:
                if node not in g:  # no crossing there: the wire passes on
                    g.add_node(node, **wire_node)
            for a, b in zip(chain, chain[1:] + [col]):
                g.add_edge(a, b, g=g_wire)
    return GraphNetwork(g, n_features=net.n_features, readout=net.readout)


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
    return np.asarray(eq.voltages)[:, neuron_indices(graph_net, net)]


def neuron_indices(graph_net: GraphNetwork, net: LayeredNetwork) -> np.ndarray:
    """Where ``net``'s free nodes (its neurons and outputs, in its order) are among ``wired(net, ...)``'s free nodes."""
    index = {n: i for i, n in enumerate(graph_net.free_nodes)}
    return np.array([index[n] for n in net.free_node_names()])


class Crossbars:
    """``wired(net, r_wire)`` laid out once and programmed with a network's conductances for each use, as a chip's
    crossbars are: the wires, the drivers, the neurons and the read-out stay; only the conductances at the
    crossings change. ``program(net)`` gives the compiled graph of ``wired(net, r_wire)`` (equal to rounding, with
    its own node order: tested) from a sparse sum, instead of laying out, checking and compiling a graph of
    30,000 nodes again for every training step. Node order: ``graph.free_nodes``; ``crossings[c]`` holds the
    (row-wire, column-wire) node indices of each crossing of connection c (its weights' rows, then its biases'),
    ``neurons`` the indices of ``net``'s free nodes in its own order."""

    def __init__(self, net: LayeredNetwork, r_wire: float):
        self.circuit = _circuit(net)
        template = net.copy()
        for a in list(template.weights) + list(template.biases):
            a[...] = 1.0  # every crossing present (wired() leaves out the zero ones)
        template.validate()
        graph = wired(template, r_wire)  # checked: roles, connectivity, the amplifiers' energy
        free = {n: i for i, n in enumerate(graph.free_nodes)}
        self.crossings = [tuple(np.array([[free[f"{k}{c}_{r}_{j}"] for j in range(w.shape[1])]
                                          for r in range(w.shape[0] + b.shape[0])]) for k in "wu")
                          for c, (w, b) in enumerate(zip(net.weights, net.biases))]
        self.neurons = neuron_indices(graph, net)
        wires = graph.graph.copy()
        wires.remove_edges_from([(f"w{c}_{r}_{j}", f"u{c}_{r}_{j}") for c, (w_ix, _) in enumerate(self.crossings)
                                 for r in range(w_ix.shape[0]) for j in range(w_ix.shape[1])])
        bare = GraphNetwork(wires, n_features=graph.n_features, readout=graph.readout, validate=False)
        bare.energy_weights = graph.energy_weights  # the crossings are plain resistors: they do not change them
        self._wires: CompiledGraph = compile_graph(bare)  # K of the wires and the amplifiers' first segments
        self._driven = np.diff(self._wires.D.tocsr().indptr) > 0  # the nodes a source drives through a wire segment
        self.graph = graph  # the sources' order and encoding, the free nodes' names

    def fits(self, net: LayeredNetwork) -> bool:
        """``net`` has the circuit this layout was laid out for (all but its conductances)."""
        return _circuit(net) == self.circuit

    def program(self, net: LayeredNetwork) -> CompiledGraph:
        """The compiled wired circuit with ``net``'s conductances at the crossings. Raises NetworkError where
        ``net`` is invalid (``net.validate()``: inside its ``unchanged()`` block, the block's entry check), does not
        fit the layout, or leaves a group of nodes without a resistive path to a source."""
        net.validate()
        if not self.fits(net):
            raise NetworkError("the network's circuit changed since it was laid out as crossbars (sizes, gains, "
                               "neurons, read-out or amplifiers): lay it out again")
        rows, cols, vals = [], [], []
        for c, (w_ix, u_ix) in enumerate(self.crossings):
            g = np.vstack([net.weights[c], net.biases[c]]).ravel()
            on = g > 0  # a zero conductance is no edge, as in wired()
            a, b, g = w_ix.ravel()[on], u_ix.ravel()[on], g[on]
            rows += [a, b, a, b]
            cols += [a, b, b, a]
            vals += [g, g, -g, -g]
        n = len(self._wires.free)
        cross = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        K = (self._wires.K + cross).tocsr()
        self._check_connected(K)
        return replace(self._wires, K=K, memo={})

    def solve(self, compiled: CompiledGraph, x, y=None, beta: float = 0.0, *, tol: float = 1e-10,
              max_iter: int = 2000):
        """``circuits.solve`` of the wired circuit that ``program`` compiled: an Equilibrium over ``graph``'s free
        nodes."""
        return _solve_graph(self.graph, x, y, beta, None, tol, max_iter, compiled=compiled)

    def _check_connected(self, K) -> None:
        count, label = csgraph.connected_components(K, directed=False)
        driven = np.zeros(count, bool)
        driven[label[self._driven]] = True
        floating = np.flatnonzero(~driven[label])
        if floating.size:
            names = [self._wires.free[i] for i in floating[:5]]
            raise NetworkError(f"{floating.size} node(s) of the crossbars have no resistive path to a source, e.g. "
                               f"{names}: their crossings' conductances are all zero; give them a conductance")


def _circuit(net: LayeredNetwork) -> tuple:
    """What a crossbar layout depends on besides the conductances."""
    return (tuple(net.sizes), tuple(float(a) for a in net.gains), tuple(map(id, net.neurons)), net.hidden_pairs,
            net.readout, float(net.bias_voltage), net.input_pairs, id(net.amplifier),
            tuple((w.shape, b.shape) for w, b in zip(net.weights, net.biases)))
