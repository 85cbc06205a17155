"""The Loihi path's batched emulator: the same integer program as the Lava run, for many samples at once.

Per time step it does what the Lava network does: every Dense outputs Lava's bit-accurate activation of
the payloads it received one step earlier, ``(mantissa @ payload) << weight_exp`` (an arithmetic right
shift for a negative exponent, as ``PyDenseModelBitAcc``; in binary mode the positive and the negative
spikes go through two Dense processes, each shifted on its own), then every neuron runs
``microcode.step``. The sums are taken in float64, exact because every partial sum stays below 2^53 (8-bit
mantissas x 24-bit payloads x fewer than 2^20 inputs, asserted). A sample starts from a reset step (state
zero, nothing heard, only the inputs sent), so its trajectory does not depend on the sample before it; the
Lava run inserts the same reset step between samples and the two agree bit for bit (tests).
"""
from __future__ import annotations

import numpy as np

from .microcode import NeuronState, Peaks, calibrate, calibration_send, encode, step


def dense_out(d, payload, binary: bool) -> np.ndarray:
    """Lava's bit-accurate Dense activation for a batch of payloads (B, n_in) -> (B, n_out), int64."""
    m = d.mantissa.astype(float)

    def shifted(s, sign):
        acc = (s.astype(float) @ m.T).astype(np.int64) * sign
        return acc << d.weight_exp if d.weight_exp > 0 else acc >> -d.weight_exp

    if not binary:
        return shifted(payload, 1)
    return shifted(payload > 0, 1) + shifted(payload < 0, -1)


def calibration_sends(program, local: int) -> list:
    """What every sender sends in calibration step ``local`` of a measured leak: the inputs', then each free
    layer's (``microcode.calibration_send``)."""
    sends = [calibration_send(0, local, program.input_cal, program.net.sizes[0], program.binary)]
    return sends + [calibration_send(p.level, local, p.cal_payload, p.r.shape[0], program.binary)
                    for p in program.layers]


def measured_conductance(program) -> list:
    """Per free layer, the g (x 2^gs, int) its nodes measure in the two calibration steps of a measured leak:
    every sender's calibration payload through the Dense processes (the partner's goes to p_in and is not
    heard), one side's current per step (``microcode.calibrate``). The same for every sample."""
    binary = program.binary
    states = [NeuronState.zeros((1, p.r.shape[0])) for p in program.layers]
    for local in (0, 1):
        sends = calibration_sends(program, local)
        a_cal = [np.zeros((1, p.r.shape[0]), dtype=np.int64) for p in program.layers]
        for d in program.dense:
            if d.role != "partner":
                a_cal[d.dst] += dense_out(d, sends[0 if d.src == "input" else d.src + 1][None, :], binary)
        for p, st, a in zip(program.layers, states, a_cal):
            calibrate(p, st, a, local + 1)
    return [st.g[0] for st in states]


def emulate(program, sources_int, targets_int=None, steps: int = 64, phases: int = 1, peaks: bool = False) -> dict:
    """Runs ``phases`` phases of ``steps`` time steps for every sample (phase p uses ``program``'s beta p).

    Returns ``states`` (per free layer: (phases, B, n) ints at the end of each phase), ``spikes`` (phases,
    B, 1 + layers: messages sent by the inputs and each layer), ``last_spike`` (phases, B: the last step of
    the phase in which a free layer sent anything, 0 if none), ``active_steps`` (phases, dense: most steps in which a
    Dense had a non-zero input, over the batch), ``peaks`` (largest magnitude of every state)."""
    L = len(program.layers)
    for d in program.dense:
        assert d.mantissa.shape[1] < 2**20, "float64 sums are exact below 2^53 only"
    B = sources_int.shape[0]
    binary = program.binary
    if targets_int is None:
        targets_int = np.zeros((B, program.layers[-1].r.shape[0]), dtype=np.int64)
    states = [NeuronState.zeros((B, p.r.shape[0])) for p in program.layers]
    recorder = Peaks() if peaks else None
    rec = [np.zeros((phases, B, p.r.shape[0]), dtype=np.int64) for p in program.layers]
    spikes = np.zeros((phases, B, L + 1), dtype=np.int64)
    if program.pre_steps > 1:  # a measured leak: two calibration steps, each node's g from what arrives
        for st, g in zip(states, measured_conductance(program)):
            st.g[...] = g
        for local in (0, 1):
            spikes[0] += [int(np.count_nonzero(s)) for s in calibration_sends(program, local)]
    # reset step: the neurons are silent, the inputs send
    src_out, src_sent = encode(sources_int, np.zeros_like(sources_int), program.theta, binary, program.input_shift)
    outs = [np.zeros((B, p.r.shape[0]), dtype=np.int64) for p in program.layers]
    spikes[0, :, 0] += np.count_nonzero(src_out, axis=1)
    last = np.zeros((phases, B), dtype=np.int64)
    active = np.zeros((phases, len(program.dense)), dtype=np.int64)
    for phase in range(phases):
        counts = np.zeros((len(program.dense), B), dtype=np.int64)
        for k in range(1, steps + 1):
            a_in = [np.zeros((B, p.r.shape[0]), dtype=np.int64) for p in program.layers]
            p_in = np.zeros((B, program.layers[-1].r.shape[0]), dtype=np.int64)
            for i, d in enumerate(program.dense):
                pay = src_out if d.src == "input" else outs[d.src]
                counts[i] += np.any(pay != 0, axis=1)
                got = dense_out(d, pay, binary)
                if d.role == "partner":
                    p_in += got
                else:
                    a_in[d.dst] += got
            new = [step(p, st, a_in[c], p_in, phase, targets_int, recorder)
                   for c, (p, st) in enumerate(zip(program.layers, states))]
            src_out, src_sent = encode(sources_int, src_sent, program.theta, binary, program.input_shift)
            outs = new
            spikes[phase, :, 0] += np.count_nonzero(src_out, axis=1)
            any_sent = np.zeros(B, bool)
            for c, o in enumerate(outs):
                n = np.count_nonzero(o, axis=1)
                spikes[phase, :, c + 1] += n
                any_sent |= n > 0
            last[phase, any_sent] = k
        for c, st in enumerate(states):
            rec[c][phase] = st.v
        active[phase] = counts.max(axis=1)
    return {"states": rec, "spikes": spikes, "last_spike": last, "active_steps": active,
            "peaks": None if recorder is None else dict(recorder.values)}
