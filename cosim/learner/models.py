"""Integer ProcessModel of ``Learner`` (tag ``fixed_pt``). Asynchronous: it handles one period per message, in
the order they come; nothing waits for it but the end of the run (its commands are read after it)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyAsyncProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.async_protocol import AsyncProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.cosim.learner.process import Learner
from eqprop.cosim.protocol import shift_round


@implements(proc=Learner, protocol=AsyncProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLearnerFixed(PyAsyncProcessModel):
    adc_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    ctrl_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    commands: np.ndarray = LavaPyType(np.ndarray, float)
    ops: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    updates: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.layout = proc_params["layout"]
        self.sizes = list(proc_params["layer_sizes"])
        self.gains = [(int(m), int(s)) for m, s in proc_params["gains"]]
        self.vb = int(proc_params["bias_code"])
        self.shapes = [tuple(s) for s in proc_params["shapes"]]
        self.pairs = bool(proc_params["pairs"])  # differential hidden layers: a hidden layer drives [u, -u]
        self.bounds = np.cumsum([0] + self.sizes)
        self.acc = [np.zeros(s, dtype=np.int64) for s in self.shapes]
        self.slots = {}
        self.n_params = int(sum(a * b for a, b in self.shapes))
        path = proc_params["register"]  # the host's register (a mapped file), or None: the Var alone
        self.register = None if path is None else np.memmap(path, dtype=np.float64, mode="r+",
                                                             shape=(self.n_params,))

    def _layers(self, codes):
        return [codes[a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:])]

    def _accumulate(self, hi, lo):
        (x_h, v_h), (x_l, v_l) = self.slots[hi], self.slots[lo]
        L = len(self.sizes)
        lh, ll = self._layers(v_h), self._layers(v_l)
        for c in range(L):
            uh = x_h if c == 0 else lh[c - 1]
            ul = x_l if c == 0 else ll[c - 1]
            if c > 0 and self.pairs:
                uh, ul = np.concatenate([uh, -uh]), np.concatenate([ul, -ul])
            m, s = self.gains[c]
            dh = m * uh[:, None] - (lh[c] << s)[None, :]
            dl = m * ul[:, None] - (ll[c] << s)[None, :]
            self.acc[c] += (dh - dl) * (dh + dl)
            for side, vb in enumerate((self.vb, -self.vb)):
                bh, bl = lh[c] - vb, ll[c] - vb
                self.acc[L + c][side] += (bh - bl) * (bh + bl)
        n_syn = sum(a * b for a, b in self.shapes)
        self.updates[0] += n_syn
        self.ops[0] += 6 * n_syn  # two drops (multiply, subtract), their sum and difference, a product, an add

    def run_async(self):
        for _ in range(self.num_steps):  # one word per period, passed on by the Nudger
            self.period()

    def period(self):
        codes = np.rint(self.adc_in.recv()).astype(np.int64)
        w = self.layout.unpack(self.ctrl_in.recv())
        if w["latch"] >= 0:
            self.slots[w["latch"]] = (w["x"].copy(), codes)
        if w["hi"] >= 0:
            self._accumulate(w["hi"], w["lo"])
        if w["emit"]:
            parts = []
            for acc, (m, s) in zip(self.acc, w["rates"]):
                parts.append(np.asarray(shift_round(acc, int(m), int(s)), dtype=float).ravel())
                acc[...] = 0
            self.commands[:] = np.concatenate(parts)
            if self.register is not None:
                self.register[:] = self.commands  # the host maps the same pages: no flush needed
            self.ops[0] += 2 * self.n_params
