"""A LayeredNetwork as connected Lava Processes, settled phase by phase (runs inside a LavaSession's process).

Connection c of the circuit becomes two BatchDense processes: forward (layer c -> c+1) with weights
a_c W_c^T, because the amplifier drives the conductances with a_c V; and backward (c+1 -> c, for free
layers c) with weights W_c / a_c, the current the amplifier's CCCS draws from the driving node.
Each free layer is one EqPropNeurons process that knows its nodes' total conductance, bias current and
diode clamp, so its per-step update is the exact node minimiser given its neighbours.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg

from eqprop.circuits.energy import node_conductance
from eqprop.circuits.serialize import clamp_to_dict

from eqprop.neuromorphic.simulation.proc.dense.process import BatchDense
from eqprop.neuromorphic.simulation.proc.neurons.process import EqPropNeurons
from eqprop.neuromorphic.simulation.proc.source.process import ClampedSource


def assign(var, value, started: bool) -> None:
    """Var.set needs a running runtime; before the first run the value becomes the Var's initial value."""
    value = np.asarray(value, dtype=float)
    if started:
        var.set(value)
    else:
        var.init = value


def warmup_steps(layers) -> int:
    """Steps before a small change can be trusted: a change needs this many to cross the network."""
    return 2 * len(layers) + 2


def run_until_settled(root, run_cfg, layers, tol, max_steps, chunk) -> tuple:
    """Runs chunks of steps until every layer's largest state change is <= tol (after warmup_steps) or
    max_steps have run; (steps run, last change). The caller decides what not settling means."""
    warmup = warmup_steps(layers)
    done, change = 0, np.inf
    while done < max_steps:
        n = min(chunk, max_steps - done)
        root.run(condition=RunSteps(num_steps=n), run_cfg=run_cfg)
        done += n
        change = max(float(layer.change.get()[0]) for layer in layers)
        if done >= warmup and change <= tol:
            break
    return done, change


class LavaEqPropNetwork:
    def __init__(self, net, batch: int, alpha: float = 1.0, threshold: float = 0.0):
        net.require_ideal_amplifiers("the Lava network")
        self.net, self.batch = net, batch
        L = net.n_connections
        self.source = ClampedSource(values=np.zeros((batch, net.sizes[0])), name="inputs")
        totals = node_conductance(net)
        self.layers = []
        for c in range(L):
            bias = net.bias_voltage * (net.biases[c][0] - net.biases[c][1])
            self.layers.append(EqPropNeurons(
                batch=batch, conductance=totals[c], bias_current=bias, clamp_params=clamp_to_dict(net.neurons[c]),
                alpha=alpha, threshold=threshold, readout=net.readout_matrix if c == L - 1 else None,
                name=f"layer{c + 1}"))
        self.forward, self.backward = [], []
        for c in range(L):
            # signed_weights: G+ - G- for a differential amplifier (hidden_pairs), the conductances otherwise
            fwd = BatchDense(weights=(net.gains[c] * net.signed_weights(c)).T, batch=batch, name=f"forward{c}")
            (self.source if c == 0 else self.layers[c - 1]).s_out.connect(fwd.s_in)
            fwd.a_out.connect(self.layers[c].a_in)
            self.forward.append(fwd)
            if c > 0:
                bwd = BatchDense(weights=net.signed_weights(c) / net.gains[c], batch=batch, name=f"backward{c}")
                self.layers[c].s_out.connect(bwd.s_in)
                bwd.a_out.connect(self.layers[c - 1].a_in)
                self.backward.append(bwd)
        self.run_cfg = Loihi2SimCfg(select_tag="floating_pt")
        self.steps = 0
        self.started = False

    def _assign(self, var, value) -> None:
        assign(var, value, self.started)

    def set_network(self, net) -> None:
        """New conductances (a training step): rewrite every connection's weights and every node's totals."""
        self.net = net
        totals = node_conductance(net)
        for c in range(net.n_connections):
            self._assign(self.forward[c].weights, (net.gains[c] * net.signed_weights(c)).T)
            if c > 0:
                self._assign(self.backward[c - 1].weights, net.signed_weights(c) / net.gains[c])
            self._assign(self.layers[c].conductance, totals[c])
            self._assign(self.layers[c].bias_current, net.bias_voltage * (net.biases[c][0] - net.biases[c][1]))

    def settle(self, sources, targets, beta, tol, max_steps, chunk) -> dict:
        self._assign(self.source.values, sources)
        out = self.layers[-1]
        self._assign(out.beta, np.array([beta]))
        if targets is not None:
            self._assign(out.targets, targets)
        done, change = run_until_settled(self.source, self.run_cfg, self.layers, tol, max_steps, chunk)
        self.started = True
        self.steps += done
        return {"layers": [layer.v.get().copy() for layer in self.layers], "steps": done, "change": change,
                "messages": float(sum(layer.messages.get()[0] for layer in self.layers))}

    def stop(self) -> None:
        self.source.stop()
