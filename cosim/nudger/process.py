"""``Nudger``: the nudging controller of the co-simulation, and the periphery's port to the converters and the
sequencer. Every period it takes the host's word (the sequencer's control word, then the ADC codes of the free
nodes), sets the nudging DACs to sign * beta * (y - R v) in DAC codes, in integer arithmetic:
e = y_code - (code(+) - code(-)), dac = sign * ((e * m) >> s) with m / 2^s = beta * ADC lsb / DAC lsb (the host's
fixed-point multiplier), answers the host with them, and then passes the word on to the ``Learner``
(``ctrl_out``, ``adc_out``), which nothing waits for. ``ops`` counts its integer operations.

The host's channels end here, not in Lava's ``Injector`` and ``Extractor`` processes: on a two-core host every
Lava process is an operating-system process, and each one in the period's path lengthens the round trip the
loop waits for at every period boundary."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class Nudger(AbstractProcess):
    def __init__(self, *, n_nodes: int, pos: np.ndarray, neg: np.ndarray, layout, buffer: int = 4,
                 name: str | None = None):
        n_targets = len(pos)
        super().__init__(pos=np.asarray(pos), neg=np.asarray(neg), layout=layout, name=name)
        self.host_in = InPort(shape=(layout.size + n_nodes,))  # from the host: control word, then ADC codes
        self.host_in.flag_external_pipe(buffer_size=buffer)
        self.host_out = OutPort(shape=(n_targets,))  # to the host: the nudging DAC codes
        self.host_out.flag_external_pipe(buffer_size=buffer)
        self.ctrl_out = OutPort(shape=(layout.size,))
        self.adc_out = OutPort(shape=(n_nodes,))
        self.ops = Var(shape=(1,), init=np.zeros(1, dtype=np.int64))

    def send(self, ctrl: np.ndarray, codes: np.ndarray) -> None:
        """The host's word of one period (the runtime must exist: after the first ``run``)."""
        self.host_in.external_pipe_csp_send_port.send(np.concatenate([ctrl, codes]).astype(float))

    def reply(self):
        """The host's end of the DAC channel (``probe`` and ``recv``). A method, not a property: Lava reads every
        attribute of a process when it is made, before the channel exists."""
        return self.host_out.external_pipe_csp_recv_port
