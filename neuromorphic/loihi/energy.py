"""Energy and time per inference on Loihi, from counted operations and published per-operation figures.

The figures are Loihi's, from Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
learning", IEEE Micro 38(1), 2018, Table 2 (also quoted in Davies et al., Proc. IEEE 109(5), 2021).
Intel has not published a per-operation table for Loihi 2; its cores run the same kinds of operations, so
these are the figures a Loihi 2 estimate starts from. Pass your own ``figures`` to use others.

    energy = synaptic ops x E_synop + neuron updates x E_neuron + spikes x E_spike
    time   = synaptic ops x t_synop + neuron updates x t_neuron      (one core, serial: an upper bound;
             spread over cores, the time is set by the busiest core and the per-step barrier)

A synaptic op is one synapse reached by one message (spikes x fan-out, graded or binary alike); every
neuron of a free layer updates on every time step (the integrator is not event-driven).
"""
from __future__ import annotations

DAVIES_2018 = {
    "synop_pj": 23.6,        # energy per synaptic spike op (minimum)
    "synop_ns": 3.5,         # time per synaptic spike op (maximum)
    "neuron_pj": 52.0,       # energy per neuron update, active neuron
    "neuron_ns": 8.4,        # time per neuron update, active neuron
    "spike_pj": 1.7,         # energy per spike sent within a tile
    "source": "Davies et al. 2018, IEEE Micro 38(1), Table 2 (Loihi)",
}


def per_inference(spikes: float, synops: float, neuron_updates: float, figures: dict = DAVIES_2018) -> dict:
    """Energy (nJ) and serial time (us) per inference, with the breakdown."""
    e_syn = synops * figures["synop_pj"] * 1e-3
    e_neu = neuron_updates * figures["neuron_pj"] * 1e-3
    e_spk = spikes * figures["spike_pj"] * 1e-3
    return {"energy_nj": e_syn + e_neu + e_spk, "synop_energy_nj": e_syn, "neuron_energy_nj": e_neu,
            "spike_energy_nj": e_spk,
            "time_us_serial": (synops * figures["synop_ns"] + neuron_updates * figures["neuron_ns"]) * 1e-3,
            "figures": figures["source"]}
