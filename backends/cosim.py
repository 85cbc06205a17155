"""The co-simulation backend: every phase a co-simulated transient (analog core in ngspice, digital periphery
in Lava, exchanging ADC and DAC codes every period; see ``eqprop.cosim.loop``).

Training: the Lava ``Learner`` reads the settled drops through the ADC and sends programming commands at the
end of each batch; this backend turns them into requested conductance changes (commands x the programming
quantum) and the trainer applies those through the device model (bounds, levels, write noise, asymmetry),
so the conductances of the next batch's netlist are what the devices took. No momentum (the controller
keeps no velocity); nudging centered, positive or negative (each a phase sequence of the controller).

Everything the trainer sees comes through the ADC: predictions (training loss and test accuracy) are the output
nodes' codes times the ADC's step, as the Learner's statistics are codes. ``--converters`` sets bits, ranges,
noise and latency; ``--noise-capacitance C`` makes the node capacitance C and puts the conductances' thermal
noise into the transients.
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits import Equilibrium, LayeredNetwork
from eqprop.circuits.devices import SPICE_TNOM_KELVIN
from eqprop.circuits.errors import InputError

from .base import ResistiveBackend

NUDGE_PHASES = {"centered": (("free", "plus", "minus"), ("plus", "minus"), 2.0),
                "positive": (("free", "plus"), ("plus", "free"), 1.0),
                "negative": (("free", "minus"), ("free", "minus"), 1.0)}
NOISE_TEMPERATURE = SPICE_TNOM_KELVIN  # K (27 C, as the noise model and ngspice): thermal noise with --noise-capacitance
PROGRAM_QUANTUM = 2.0 ** -20  # programming command step, relative to the array's mean conductance


class CosimBackend(ResistiveBackend):
    name = "cosim"
    onchip = True
    programs = True  # onchip_step returns requested changes; the trainer's device model applies them
    defaults = {"momentum": 0.0}

    def __init__(self, network: LayeredNetwork, capacitance: float = 1e-12, period: float | None = None,
                 periods_per_phase: int | None = None, adc=None, dac=None, nudging: str = "centered",
                 settle_to: float = 1e-5, seed: int = 0, batch: int = 64, converters=None,
                 temperature: float | None = None):
        from eqprop.cosim.loop import CoSimulation

        if nudging not in NUDGE_PHASES:
            raise InputError(f"the cosim backend's controller sequences centered, positive or negative nudging, "
                             f"not {nudging!r}")
        self.network = network
        self.nudging = nudging
        self.batch = int(batch)
        self.sim = CoSimulation(network, capacitance, period, periods_per_phase, adc, dac, settle_to=settle_to,
                                ideal_diode=None, seed=seed, converters=converters, temperature=temperature)
        self.figures = {"samples": 0, "wall_s": 0.0, "periods": 0}

    @classmethod
    def check_config(cls, cfg) -> None:
        from eqprop.cosim.converters import Converters

        Converters.parse(cfg.converters)  # InputError (a ValueError) in one line
        if cfg.noise_window:
            raise InputError("the cosim backend's ADC samples each node at an instant: drop --noise-window (its thermal "
                             "noise is the transient's own, from --noise-capacitance)")

    @classmethod
    def from_config(cls, network, cfg) -> "CosimBackend":
        """--converters sets the ADC and DAC; --noise-capacitance C makes every free node C farads and puts every
        conductance's thermal noise (at 300 K) into the transients (default: 1 pF, noiseless)."""
        from eqprop.cosim.converters import Converters

        c = cfg.noise_capacitance
        return cls(network, capacitance=1e-12 if c is None else float(c), nudging=cfg.nudging, seed=cfg.seed,
                   converters=Converters.parse(cfg.converters), temperature=None if c is None else NOISE_TEMPERATURE)

    def _record(self, r, n: int) -> None:
        f = self.figures
        f["samples"] += n
        f["wall_s"] += r.wall_s
        f["periods"] += r.periods
        f["last"] = r

    def settle(self, x, y=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        from eqprop.netlists.ngspice import make_equilibrium

        net = self.network
        x = net.check_inputs(x)
        phase = "free" if beta == 0 else ("plus" if beta > 0 else "minus")
        volts = []
        for i in range(0, len(x), self.batch):
            xb = x[i:i + self.batch]
            yb = None if y is None else y[i:i + self.batch]
            r = self.sim.run(xb, yb, abs(beta), phases=(phase,))
            self._record(r, len(xb))
            volts.append(r.adc_volts[phase])  # what the periphery read: the ADC's codes
        v = np.concatenate(volts)
        c = self.sim.circuit
        eq = make_equilibrium(net, c.free_nodes, c.readout, x, y, beta, v, np.zeros(len(x), dtype=int),
                              np.zeros(len(x)))
        eq.method = "cosim"
        return eq

    def onchip_step(self, x, y, beta: float, scales) -> tuple:
        """One batch co-simulated with learning: (free-phase predictions, requested change per parameter)."""
        net = self.network
        x = net.check_inputs(x)
        y = net.check_targets(y, x.shape[0])
        phases, learn, span = NUDGE_PHASES[self.nudging]
        params = self.parameters()
        lsb2 = self.sim.adc.lsb ** 2
        L = net.n_connections
        quanta = [PROGRAM_QUANTUM * (float(p.mean()) if p.mean() > 0 else 1.0) for p in params]
        rates = []
        for i, (s, q) in enumerate(zip(scales, quanta)):
            c = i % L
            g_shift = self.sim_gain_shift(c) if i < L else 0
            kappa = float(net.energy_weights[c])
            rates.append(-s * 0.5 * kappa * lsb2 * 4.0 ** (-g_shift) / (span * beta * self.cost_weight * q))
        r = self.sim.run(x, y, beta, phases=phases, learn=learn, rates=rates)
        self._record(r, len(x))
        deltas = [cmd * q for cmd, q in zip(r.commands, quanta)]
        pred = r.adc_volts["free"] @ self.sim.circuit.readout.T  # the readout through the ADC
        return pred, deltas

    def sim_gain_shift(self, c: int) -> int:
        from eqprop.cosim.loop import fixed_point_gain

        return fixed_point_gain(float(self.network.gains[c]))[1]

    def sync(self) -> None:
        self.network.validate()

    def close(self) -> None:
        self.sim.close()

    def physical_figures(self, x, capacitance: float = 1e-12) -> dict:
        r = self.sim.run(x[:1], phases=("free",))
        return {"settling_time_s": float(r.settling_time["free"][0]), "energy_per_inference_j": float(r.energy["free"][0]),
                "digital_energy_per_inference_j": r.digital_energy()["energy_nj"] * 1e-9,
                "converter_energy_per_inference_j": float(r.converter_energy["free"][0]),
                "cosim_wall_s_per_sample": r.wall_s,
                "capacitance_f": self.sim.capacitance, "period_s": self.sim.period}
