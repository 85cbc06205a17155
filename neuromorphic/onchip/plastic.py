"""The on-chip learning path: a LayeredNetwork whose conductances are Lava ``LearningDense`` synapses that
compute their own EqProp update in the learning engine during the nudged phase (runs inside a LavaSession).

Wiring (one sample per run, see ``plastic_process``): connection c is a forward synapse a_c G_c^T from
layer c to layer c+1 and, between free layers, a backward synapse G_c / a_c; the bias conductances are a
forward synapse from the rails +-vb / a_c through the same amplifier. Every synapse runs one rule,

    dw = y1 - 4 x1 y2      (x1 = presynaptic voltage / 2 from the graded payload; y1, y2 third factors)

evaluated every step (t_epoch = 1). Summed over the nudged phase it is the differential (STDP-like) form of
EqProp: the synapse into v learns  s kappa [d(v^2) - 2 a u dv]  and the one out of u learns
s kappa [a^2 d(u^2) - 2 a v du]  (Scellier & Bengio 2017, sec. 6; Bengio et al. 2015), whose sum over the
phase is  s kappa [(a u - v)^2]_free^nudged  up to the second-order term  2 a sum(du dv)  of the
discrete-time product rule. With s = -eta / (2 beta) that is the one-sided EqProp update of G; the
centered one runs +beta silently, then learns from +beta to -beta with s = eta / (4 beta).
Each direction learns half of the update (its own postsynaptic terms); the conductance update is the sum
of the two halves, which the host reads back (on a chip: an exchange between the two synapse copies).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import LearningDense

from eqprop.circuits.energy import node_conductance
from eqprop.circuits.serialize import clamp_to_dict

from eqprop.neuromorphic.simulation.network import assign, run_until_settled, warmup_steps
from eqprop.neuromorphic.simulation.proc.neurons.process import PlasticNeurons
from eqprop.neuromorphic.simulation.proc.source.process import ValueSource

LEARNING_RULE = "u0 * y1 - u0 * 2^2 * x1 * y2"


def _rule():
    # u0: the products apply at every epoch (decimation 2^0); t_epoch 1: an epoch is one time step; no trace
    # decays (every one is overwritten each step: x1 by the graded payload, y1/y2 by the third-factor ports)
    from .network import three_factor_rule

    return three_factor_rule(LEARNING_RULE)


class PlasticEqPropNetwork:
    def __init__(self, net, alpha: float = 1.0):
        from lava.magma.core.learning.constants import GradedSpikeCfg

        net.require_ideal_amplifiers("on-chip learning")
        self.net = net
        L = net.n_connections
        kappa = net.energy_weights
        totals = node_conductance(net)
        vb = net.bias_voltage
        self.inputs = ValueSource(values=np.zeros(net.sizes[0]), name="inputs")
        self.layers, self.rails, self.forward, self.backward, self.bias = [], [], [], [], []
        for c in range(L):
            last = c == L - 1
            self.layers.append(PlasticNeurons(
                conductance=totals[c], clamp_params=clamp_to_dict(net.neurons[c]), gain_in=net.gains[c],
                kappa_in=kappa[c], gain_out=0.0 if last else net.gains[c + 1],
                kappa_out=0.0 if last else kappa[c + 1], alpha=alpha,
                readout=net.readout_matrix if last else None, name=f"layer{c + 1}"))

        def synapse(weights, name, pre, post, side):
            """A plastic connection from ``pre`` into ``post``, with post's third factors for that ``side``."""
            syn = LearningDense(weights=weights, learning_rule=_rule(), num_message_bits=24,
                                graded_spike_cfg=GradedSpikeCfg.OVERWRITE, name=name)
            pre.s_out.connect(syn.s_in)
            syn.a_out.connect(post.a_in)
            post.bap.connect(syn.s_in_bap)
            getattr(post, f"y1_{side}").connect(syn.s_in_y1)
            getattr(post, f"y2_{side}").connect(syn.s_in_y2)
            return syn

        for c in range(L):
            a, post = net.gains[c], self.layers[c]
            pre = self.inputs if c == 0 else self.layers[c - 1]
            self.forward.append(synapse(a * net.weights[c].T, f"forward{c}", pre, post, "forward"))
            self.rails.append(ValueSource(values=np.array([vb / a, -vb / a]), name=f"rails{c}"))
            self.bias.append(synapse(a * net.biases[c].T, f"bias{c}", self.rails[c], post, "forward"))
            if c > 0:
                self.backward.append(synapse(net.weights[c] / a, f"backward{c}", post, pre, "backward"))
        self.run_cfg = Loihi2SimCfg(select_tag="floating_pt")
        self.started = False

    def _set(self, var, value) -> None:
        assign(var, value, self.started)

    def _settle(self, tol, max_steps, chunk) -> int:
        done, change = run_until_settled(self.inputs, self.run_cfg, self.layers, tol, max_steps, chunk)
        self.started = True
        if change > tol or done < warmup_steps(self.layers):
            raise RuntimeError(f"the plastic Lava network did not settle in {max_steps} steps (last change "
                               f"{change:.2e} V > tol {tol:.1e} V); raise max_steps")
        return done

    def _phase(self, beta, targets, plasticity, tol, max_steps, chunk) -> int:
        out = self.layers[-1]
        self._set(out.beta, [beta])
        self._set(out.targets, targets)
        for layer in self.layers:
            self._set(layer.plasticity, [plasticity])
        return self._settle(tol, max_steps, chunk)

    def synapses(self) -> list:
        return self.forward + self.backward + self.bias

    def weights(self) -> list:
        return [s.weights.get().copy() if self.started else np.array(s.weights.init, dtype=float)
                for s in self.synapses()]

    def learn(self, sources, targets, beta, eta, nudging, tol, max_steps, chunk) -> dict:
        """Every sample in turn: free phase, then the learning phase(s); returns the conductance update the
        learning engine accumulated (weights then biases, in siemens) and the steps it took."""
        before = self.weights()
        # the same scale as the host's estimate of d(mean loss)/dG: the cost enters F with weight kappa_L
        eta = eta / (float(self.net.energy_weights[-1]) * sources.shape[0])
        steps = 0
        for b in range(sources.shape[0]):
            self._set(self.inputs.values, sources[b])
            for s in self.synapses():  # a zero payload leaves x1 as it was: start every sample from 0
                self._set(s.x1, np.zeros(s.x1.shape))
            steps += self._phase(0.0, targets[b], 0.0, tol, max_steps, chunk)
            if nudging == "centered":
                steps += self._phase(beta, targets[b], 0.0, tol, max_steps, chunk)
                steps += self._phase(-beta, targets[b], eta / (4 * beta), tol, max_steps, chunk)
            else:
                steps += self._phase(beta, targets[b], -eta / (2 * beta), tol, max_steps, chunk)
        for layer in self.layers:
            self._set(layer.plasticity, [0.0])
        after = self.weights()
        delta = [w1 - w0 for w0, w1 in zip(before, after)]
        L = len(self.layers)
        fwd, bwd, bias = delta[:L], delta[L:2 * L - 1], delta[2 * L - 1:]
        d_weights = [fwd[c].T + (bwd[c - 1] if c > 0 else 0.0) for c in range(L)]
        d_biases = [bias[c].T for c in range(L)]
        return {"update": d_weights + d_biases, "steps": steps,
                "halves": {"forward": [f.T for f in fwd], "backward": bwd}}

    def stop(self) -> None:
        if self.started:
            self.inputs.stop()
