"""The Loihi backend: every phase the bit-accurate Loihi path (integer neurons, Lava's bit-accurate Dense).

Phases run in the batched emulator (``neuromorphic.loihi.emulator``), which runs the same integer program
as the Lava processes; on its first settle the backend runs the first ``verify`` samples through Lava
itself and requires the two to agree bit for bit (``info['lava_verified']``), so every run checks the
emulator it relies on. Updates are host-side: the float conductances are updated by the training loop and
requantised to 8-bit mantissas at every settle. The equilibrium's ``info`` carries the spikes, synaptic
operations and time steps per inference, the Loihi energy estimate and the peak of every state (a state
past its 24 bits fails the settle).
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits import Equilibrium, LayeredNetwork
from eqprop.circuits.energy import kcl_residual, readout
from eqprop.circuits.errors import NetworkError
from eqprop.neuromorphic.loihi.emulator import emulate
from eqprop.neuromorphic.loihi.energy import per_inference
from eqprop.neuromorphic.loihi.map import build_program, check_network
from eqprop.neuromorphic.loihi.microcode import check_widths

from .base import ResistiveBackend


def snap(program, layers) -> list:
    """States within one LSB of a rail put on it (the integer state resolves a rail to one LSB; the KCL
    residual is judged at the rail it stands for)."""
    out = []
    for clamp, v in zip(program.net.neurons, layers):
        if clamp is not None:
            for rail in (clamp.v_low, clamp.v_high):
                v = np.where(np.abs(v - rail) <= program.lsb, rail, v)
        out.append(v)
    return out


class LoihiBackend(ResistiveBackend):
    name = "loihi"
    defaults = {"threshold": 1e-4, "time_steps": 64}

    def __init__(self, network: LayeredNetwork, threshold: float = 1e-4, binary: bool = False, steps: int = 64,
                 alpha: float = 0.5, verify: int = 4, timeout: float = 300.0, leak: str = "reciprocal"):
        if not isinstance(network, LayeredNetwork):
            raise NetworkError(f"the Loihi backend runs LayeredNetworks, got {type(network).__name__}")
        check_network(network)
        self.network = network
        self.threshold, self.binary, self.steps, self.alpha = float(threshold), bool(binary), int(steps), float(alpha)
        self.leak = leak
        build_program(network, 1.0, alpha, threshold, binary, leak=leak)  # every parameter checked now, not mid-run
        self.verify, self.timeout = int(verify), float(timeout)
        self.verified = None  # samples the Lava run matched bit for bit (None: not yet checked)

    def program(self, sources, beta: float = 0.0):
        v_in = max(1.0, float(np.abs(sources).max(initial=0.0)))
        return build_program(self.network, v_in, self.alpha, self.threshold, self.binary, betas=(beta,),
                             leak=self.leak)

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        net = self.network
        x = net.check_inputs(x)
        if y is not None:
            y = net.check_targets(y, x.shape[0])
        sources = net.encode_inputs(x)
        prog = self.program(sources, beta)
        s_int = prog.sources_int(sources)
        t_int = None if y is None else prog.targets_int(y)
        r = emulate(prog, s_int, t_int, self.steps, 1, peaks=True)
        check_widths(r["peaks"])
        if self.verified is None:
            self.verified = self._verify(prog, s_int, t_int, r)
        layers = [prog.volts(s[0]) for s in r["states"]]
        res = kcl_residual(net, sources, snap(prog, layers), y, beta)
        residual = float(max(np.abs(v).max(initial=0.0) for v in res))
        info = self.activity(prog, r)
        info.update(lava_verified=self.verified, peaks=r["peaks"], active_steps=r["active_steps"])
        return Equilibrium(np.hstack(layers), x, readout(net, layers[-1]), self.steps, residual, beta, y,
                           net.free_sizes, "loihi", info)

    def activity(self, prog, r) -> dict:
        """Per inference (means over the batch): messages, synaptic ops, time steps, Loihi energy."""
        spikes = r["spikes"].sum(axis=0)  # (B, 1 + layers)
        fan = np.array(prog.synapses_out(), dtype=float)
        synops = float((spikes * fan).sum(axis=1).mean())
        n_spikes = float(spikes.sum(axis=1).mean())
        phases = r["spikes"].shape[0]
        updates = float(sum(p.r.shape[0] for p in prog.layers)) * (prog.pre_steps + phases * self.steps)
        last = r["last_spike"]
        return {"spikes_per_inference": n_spikes, "synops_per_inference": synops,
                "time_steps": prog.pre_steps + phases * self.steps, "silent_after_steps": float(last.mean()),
                "not_silent": float((last >= self.steps).mean()),
                "loihi": per_inference(n_spikes, synops, updates)}

    def _verify(self, prog, s_int, t_int, r) -> int:
        """Runs the first ``verify`` samples through Lava's processes; they must equal the emulator's."""
        n = min(self.verify, s_int.shape[0])
        if n == 0:
            return 0
        try:
            from eqprop.neuromorphic import LavaSession
        except ImportError:  # pragma: no cover - lava-nc is a dependency; say so rather than hide it
            return 0
        with LavaSession(timeout=self.timeout) as session:
            got = session.loihi(prog, s_int[:n], None if t_int is None else t_int[:n], self.steps, 1)
        for c, (a, b) in enumerate(zip(r["states"], got["states"])):
            if not np.array_equal(a[:, :n], b):
                raise NetworkError(f"the emulator and the Lava run differ in layer {c + 1} (largest difference "
                                   f"{int(np.abs(a[:, :n] - b).max())} LSB): the emulator no longer models Lava")
        return n

    @classmethod
    def from_config(cls, network, cfg) -> "LoihiBackend":
        return cls(network, threshold=cfg.threshold, binary=cfg.spikes == "binary", steps=cfg.time_steps)

    def physical_figures(self, x, capacitance: float = 1e-12) -> dict:
        eq = self.settle(x)
        i = eq.info
        return {"energy_per_inference_j": i["loihi"]["energy_nj"] * 1e-9,
                "time_per_inference_s_one_core": i["loihi"]["time_us_serial"] * 1e-6,
                "spikes_per_inference": i["spikes_per_inference"], "synops_per_inference": i["synops_per_inference"],
                "time_steps": i["time_steps"], "silent_after_steps": i["silent_after_steps"]}
