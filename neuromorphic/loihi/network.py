"""The Loihi path as Lava processes (runs inside a LavaSession's child process).

A ``SamplePlayer`` for the inputs, one ``LoihiNeurons`` per free layer, and Lava's own
``lava.proc.dense.process.Dense`` for every connection, run with ``Loihi2SimCfg(select_tag=
'bit_accurate_loihi')`` so each Dense runs ``PyDenseModelBitAcc`` (8-bit weights, weight exponent,
one-step buffered activation). Graded mode: one Dense per direction, ``num_message_bits=24``. Binary mode:
two per direction (positive spikes through the mantissas, negative ones through their negatives; sign
modes excitatory and inhibitory), ``num_message_bits=0``. The whole data set runs as one Lava execution on
the neurons' schedule; the host reads the records once at the end.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense

from eqprop.neuromorphic.loihi.proc.neurons.process import LoihiNeurons
from eqprop.neuromorphic.loihi.microcode import WIDTHS
from eqprop.neuromorphic.loihi.proc.player.process import SamplePlayer


def run_loihi(program, sources_int, targets_int=None, steps: int = 64, phases: int = 1,
              record_hidden: bool = True) -> dict:
    """The data set through the Lava processes; the same dict as ``loihi.emulator.emulate``."""
    S = sources_int.shape[0]
    L = len(program.layers)
    player = SamplePlayer(sources=sources_int, steps=steps, phases=phases, theta=program.theta,
                          binary=program.binary, shift=program.input_shift, pre=program.pre_steps,
                          cal=program.input_cal, name="inputs")
    layers = [LoihiNeurons(program=p, samples=S, steps=steps, phases=phases,
                           targets=targets_int if p.output else None, record=p.output or record_hidden,
                           pre=program.pre_steps,
                           name=f"layer{c + 1}") for c, p in enumerate(program.layers)]
    bits = 0 if program.binary else 24
    for d in program.dense:
        src = player if d.src == "input" else layers[d.src]
        dst = layers[d.dst].p_in if d.role == "partner" else layers[d.dst].a_in
        if program.binary:
            for port, sign in ((src.s_pos, 1), (src.s_neg, -1)):
                conn = Dense(weights=sign * d.mantissa, weight_exp=d.weight_exp, num_message_bits=bits,
                             name=f"{d.role}{d.src}to{d.dst}{'+' if sign > 0 else '-'}")
                port.connect(conn.s_in)
                conn.a_out.connect(dst)
        else:
            conn = Dense(weights=d.mantissa, weight_exp=d.weight_exp, num_message_bits=bits,
                         name=f"{d.role}{d.src}to{d.dst}")
            src.s_out.connect(conn.s_in)
            conn.a_out.connect(dst)
    total = S * (program.pre_steps + phases * steps)
    cfg = Loihi2SimCfg(select_tag="bit_accurate_loihi")
    try:
        player.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        states = []
        for c, layer in enumerate(layers):
            if layer.record.shape[0] > 1:
                states.append(layer.record.get().astype(np.int64).reshape(S, phases, -1).transpose(1, 0, 2))
            else:
                states.append(None)
        spikes = np.stack([player.spikes.get()] + [layer.spikes.get() for layer in layers], axis=-1)
        spikes = spikes.astype(np.int64).reshape(S, phases, L + 1).transpose(1, 0, 2)
        last = np.max([layer.last_spike.get() for layer in layers], axis=0).astype(np.int64)
        peaks = {}
        for layer in layers:
            for k, m in zip(WIDTHS, layer.peaks.get()):
                peaks[k] = max(peaks.get(k, 0), int(m))
    finally:
        player.stop()
    return {"states": states, "spikes": spikes, "last_spike": last.reshape(S, phases).T, "peaks": peaks,
            "time_steps": total}
