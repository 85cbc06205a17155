"""Energy and time per inference and per training sample on Loihi, from counted operations and published
per-operation figures, as a range (min, max) rather than a point.

The figures are Loihi's (the first chip), from Davies et al., "Loihi: a neuromorphic manycore processor with
on-chip learning", IEEE Micro 38(1), 2018, Table 2: pre-silicon figures (simulated, at 0.75 V), the only
per-operation table Intel has published. Intel has published no per-operation figures for Loihi 2 (its brief
gives speed-ups, not joules), so a Loihi 2 estimate starts from these, labelled as Loihi 1's. Pass your own
``figures`` to use others.

    energy = synaptic ops x E_synop + neuron updates x E_neuron + messages x E_spike (+ E_hop per hop)
             + synapse updates x E_learn                                       (training only)
    time   = synaptic ops x t_synop + neuron updates x t_neuron                (one core, serial)

The range: E_neuron between the inactive (52 pJ) and the active (81 pJ) update; a message within a tile (1.7 pJ)
or one tile hop further (+ 4.0 pJ, the dearer direction); the synaptic op's 23.6 pJ is the table's minimum and
its only figure. Time: at most every operation on one core one after the other; at least the busiest of
``cores`` cores sharing the work evenly. What the table does not give is left out and named (``excluded``): the
static (leakage) power, the barrier synchronisation that ends every time step, and the host's I/O. ``static_w``
and ``barrier_s`` (your chip's figures) add them: static power over the run's time, a barrier per time step.

A synaptic op is one synapse reached by one message (graded or binary alike); every neuron of a free layer
updates on every time step (the integrator is not event-driven); with the one-chip rule (t_epoch 1, a
dependency on u0) the learning engine updates every synapse on every time step, and the table's figure for a
synapse update is the pairwise-STDP one (120 pJ).
"""
from __future__ import annotations

DAVIES_2018 = {
    "synop_pj": 23.6,        # energy per synaptic spike op (the table's minimum)
    "synop_ns": 3.5,         # time per synaptic spike op (the table's maximum)
    "neuron_pj": 52.0,       # energy per neuron update, inactive
    "neuron_active_pj": 81.0,  # energy per neuron update, active
    "neuron_ns": 8.4,        # time per neuron update
    "spike_pj": 1.7,         # energy per spike sent within a tile
    "hop_pj": 4.0,           # energy per tile hop (north-south; east-west 3.0)
    "learn_pj": 120.0,       # energy per synaptic update (pairwise STDP)
    "source": "Davies et al. 2018, IEEE Micro 38(1), Table 2 (Loihi 1, pre-silicon, 0.75 V)",
}


def estimate(messages: float, synops: float, neuron_updates: float, synapse_updates: float = 0.0, steps: float = 0.0,
             cores: int = 1, figures: dict = DAVIES_2018, static_w: float | None = None,
             barrier_s: float | None = None) -> dict:
    """Energy (nJ) and time (us) of the counted operations, each as (min, max), with the breakdown at the minimum."""
    f = figures
    e_syn = synops * f["synop_pj"] * 1e-3
    e_neu = (neuron_updates * f["neuron_pj"] * 1e-3, neuron_updates * f.get("neuron_active_pj", f["neuron_pj"]) * 1e-3)
    e_spk = (messages * f["spike_pj"] * 1e-3, messages * (f["spike_pj"] + f.get("hop_pj", 0.0)) * 1e-3)
    e_lrn = synapse_updates * f.get("learn_pj", 0.0) * 1e-3
    serial = (synops * f["synop_ns"] + neuron_updates * f["neuron_ns"]) * 1e-3
    time = [serial / max(int(cores), 1), serial]
    excluded = []
    if barrier_s is None:
        excluded.append("the per-step barrier synchronisation")
    else:
        time = [t + steps * barrier_s * 1e6 for t in time]
    energy = [e_syn + e_neu[i] + e_spk[i] + e_lrn for i in (0, 1)]
    if static_w is None:
        excluded.append("static power")
    else:
        energy = [e + static_w * t * 1e3 for e, t in zip(energy, time)]  # W x us = 1e3 nJ
    excluded.append("host I/O")
    return {"energy_nj": tuple(energy), "time_us": tuple(time), "synop_energy_nj": e_syn,
            "neuron_energy_nj": e_neu[0], "spike_energy_nj": e_spk[0], "learning_energy_nj": e_lrn,
            "excluded": ", ".join(excluded) + " (no published figure; pass static_w / barrier_s)",
            "figures": f["source"]}


def per_inference(spikes: float, synops: float, neuron_updates: float, figures: dict = DAVIES_2018) -> dict:
    """Energy (nJ) and serial time (us) per inference with the breakdown: the minimum end of ``estimate``
    (``energy_nj``), its maximum (``energy_nj_max``)."""
    r = estimate(spikes, synops, neuron_updates, figures=figures)
    return {"energy_nj": r["energy_nj"][0], "energy_nj_max": r["energy_nj"][1], "synop_energy_nj": r["synop_energy_nj"],
            "neuron_energy_nj": r["neuron_energy_nj"], "spike_energy_nj": r["spike_energy_nj"],
            "time_us_serial": r["time_us"][1], "excluded": r["excluded"], "figures": r["figures"]}
