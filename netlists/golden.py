"""The example netlists kept in ``netlists/examples/``: how they are built, so tests can rebuild them byte for byte.

``python -m eqprop.netlists.golden`` rewrites them (do that only when a change to the writer is meant
to change them, and read the diff).
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from eqprop.circuits.devices import DiodeClamp, PiecewiseLinearDiode, ShockleyDiode
from eqprop.circuits.network import GraphNetwork, layered

from .writer import to_netlist

EXAMPLES_DIR = Path(__file__).with_name("examples")


def kendall_tiny():
    """A Kendall-style 3-feature network: 6 input sources, 4 Shockley neurons, gain-2 amplifiers, 1 output pair."""
    net = layered([6, 4, 2], diode=ShockleyDiode(), rails=(-0.3, 0.3), gain=2.0, g_range=(1e-6, 5e-6), seed=7)
    x = np.array([[0.9, -0.6, 0.4]])
    y = np.array([[0.15]])
    return net, x, y, 2e-7


def lateral_graph():
    """A non-layered graph: 2 inputs, a bias, 3 hidden nodes with lateral links and PWL diodes, 2 single-node outputs."""
    clamp = DiodeClamp(PiecewiseLinearDiode(g_on=1e-4, v_on=0.0, g_off=1e-9), -0.2, 0.2)
    g = nx.Graph()
    g.add_node("u0", role="input", feature=0, sign=1.0)
    g.add_node("u1", role="input", feature=1, sign=1.0)
    g.add_node("vb", role="bias", voltage=0.5)
    for k in range(3):
        g.add_node(f"h{k}", role="hidden", neuron=clamp)
    g.add_node("o0", role="output", readout=(0, 1.0))
    g.add_node("o1", role="output", readout=(1, 1.0))
    edges = [("u0", "h0", 3e-6), ("u0", "h1", 1e-6), ("u1", "h1", 2e-6), ("u1", "h2", 4e-6), ("vb", "h0", 1e-6),
             ("vb", "h2", 5e-7), ("h0", "h1", 1.5e-6), ("h1", "h2", 2.5e-6), ("h0", "o0", 2e-6), ("h1", "o0", 1e-6),
             ("h1", "o1", 3e-6), ("h2", "o1", 1e-6), ("vb", "o0", 5e-7), ("vb", "o1", 5e-7)]
    for u, v, gval in edges:
        g.add_edge(u, v, g=gval)
    net = GraphNetwork(g, n_features=2, readout="nodes")
    x = np.array([[0.8, -0.5], [0.1, 0.3], [-0.6, 0.9]])
    y = np.array([[0.1, -0.1], [0.0, 0.05], [-0.05, 0.2]])
    return net, x, y, 1e-6


EXAMPLES = {"kendall_tiny": kendall_tiny, "lateral_graph": lateral_graph}


def example_netlist(name: str) -> str:
    net, x, y, beta = EXAMPLES[name]()
    return to_netlist(net, x, y, beta, title=f"eqprop-hw example: {name} (nudged phase)").text


def write_examples(directory=EXAMPLES_DIR) -> list:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in EXAMPLES:
        path = directory / f"{name}.cir"
        path.write_text(example_netlist(name))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_examples():
        print("wrote", p)
