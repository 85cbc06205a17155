"""``Learner``: the learning controller of the co-simulation. At the period boundary that ends a phase it
latches the settled ADC codes of every free node (and the sample's input codes); when a sample's phases are
complete it accumulates, for every conductance, the difference of its EqProp statistic between two phases
in 64-bit integers: for a weight, (a u - v)^2 at the nudged phase minus at the other (a the amplifier gain as
a fixed-point a_m / 2^a_s; with differential hidden layers, ``pairs``, a hidden layer drives [u, -u]: its
inverting outputs' conductances are rows of their own), for a bias (v -+ v_bias)^2. On the boundary that ends a batch it turns each
accumulator into programming commands, round(acc * m / 2^s) (the host's fixed-point multiplier per array:
learning rate, kappa, LSB^2 and 1/(2 beta) folded in), holds them in ``commands`` (read by the host when the
run has ended, as a chip's host reads a register: no port carries them every period) and clears. ``ops`` counts its integer
operations; ``updates`` the synapse statistics it accumulated.

``register``: the path of a file of n_params float64 that the model maps and writes the commands into as well
(the host's view of the register: Lava 0.10 reads a Var one element per message, about 15,000 messages a
batch for 128-100-20, which ``Var.get`` still does when no register is given)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class Learner(AbstractProcess):
    def __init__(self, *, layer_sizes: list, n_inputs: int, gains: list, bias_code: int, layout,
                 pairs: bool = False, register: str | None = None, name: str | None = None):
        n_nodes = int(sum(layer_sizes))
        rows = [n_inputs] + [2 * u if pairs else u for u in layer_sizes[:-1]]
        shapes = [(u, v) for u, v in zip(rows, layer_sizes)]
        shapes += [(2, v) for v in layer_sizes]
        n_params = int(sum(a * b for a, b in shapes))
        super().__init__(layer_sizes=list(layer_sizes), n_inputs=n_inputs, gains=list(gains), bias_code=bias_code,
                         layout=layout, shapes=shapes, pairs=bool(pairs), register=register, name=name)
        self.adc_in = InPort(shape=(n_nodes,))
        self.ctrl_in = InPort(shape=(layout.size,))
        self.commands = Var(shape=(n_params,), init=np.zeros(n_params))  # the last batch's programming commands
        self.ops = Var(shape=(1,), init=np.zeros(1, dtype=np.int64))
        self.updates = Var(shape=(1,), init=np.zeros(1, dtype=np.int64))
