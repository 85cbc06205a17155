"""Lockstep mixed-signal co-simulation: the analog core in ngspice, its digital periphery in Lava.

Time is cut into periods of T seconds of circuit time; the host sends the periphery one word per period and is
its clock (the ProcessModels are asynchronous: each handles one word at a time, in order). ngspice (this
process, shared library) integrates the transient of the resistive network with its node capacitances. A
voltage source with a corner at every period boundary makes ngspice place a time point exactly there (a
breakpoint). The nudging DACs are EXTERNAL current sources: ngspice asks this process for their value at
every evaluation (``NgSpiceShared.get_isrc_data``). The first time it asks for a time past boundary m, the
point at mT has been accepted, so the bridge

  1. reads the output pairs' voltages at mT (at a phase's last boundary every free node's, which the Learner
     latches) and converts them with the ADC,
  2. sends the sequencer's control word and the codes to the ``Nudger`` (an integer ProcessModel, the
     periphery's port to the host), which
  3. answers with the DAC codes of period m and passes the word on to the ``Learner`` (nothing waits for it).
     After the converters' latency of L periods (0 by default: the DAC changes at the sampling instant) the
     codes hold for one period (zero-order hold).

With L = 0 the loop's only delay is the hold itself (a code decided at mT acts during (mT, (m+1)T]); a clocked
converter pair that needs a period to convert has L = 1 (``cosim.bounds`` derives the stability limit for each L). Why callbacks and not
stop/alter/resume: the external source hands ngspice a value without a command (no netlist parse, no
halt), and the breakpoint source pins the sampling instants, so one ``tran`` runs a whole batch.

Thermal noise (``temperature``), two ways. ``noise="transient"``: a noise current source across every resistor,
of density 2kTG (``netlists.Transient.noise_temperature``: Gaussian samples held 1/20 of the fastest node's RC):
the kT/C of the node capacitances appears by itself, in the network and in everything the loop reads; each
transient's noise is drawn afresh (not repeatable), and the short noise steps make the transient slower.
``noise="sampled"`` (the default): every conversion reads the node voltages plus one draw of the circuit's noise
model (``circuits.noise.ThermalNoise``: the stationary covariance of the nodes at each sample's equilibrium in
each phase, Shockley diodes' shot noise included), seeded; draws of successive periods are independent (the
nodes' correlation time, their RC, is about a period), and the noise does not move the network itself, only
what the periphery reads and therefore what it nudges and learns.

Track-and-hold (``Converters.hold``): a switch and a hold capacitor per free node; the switch holds from each
boundary for the conversion (``hold_time`` of a period) and tracks otherwise, and the ADC converts the hold
capacitors. So the hold capacitance loads its node while it tracks, the sample lags the node by the switch's
RC, and re-closing shares the held charge with the node (kickback): each appears by itself in the transient.

Converter energy (``CosimResult.converter_energy``): per period the ADC converts the nodes the nudge reads (the
output pairs); at each phase's end it converts every free node the Learner latches (learning runs) or the outputs
(inference); every nudged period updates each nudging DAC once. Each conversion costs the converter's Walden
figure (``cosim.converters``).

A batch is one transient: sample after sample, each with its phases (free, +beta, -beta) of P periods; the
inputs are piecewise-linear sources that switch at sample boundaries (rise T/100); the network is not reset
between samples (each phase starts from the last one's state, as a chip would). Conductances change only
between batches, from the programming commands the ``Learner`` emits at the batch's last boundary.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
import time as _time
import weakref
from dataclasses import dataclass, field

import numpy as np

from eqprop.circuits.energy import node_conductance
from eqprop.circuits.errors import InputError, NetworkError
from eqprop.circuits.network import LayeredNetwork
from eqprop.circuits.solver import _check_negative_beta
from eqprop.netlists import Drive, NgspiceCircuit, SpiceError, SpiceOptions, Transient, target_pairs, to_netlist
from eqprop.netlists.ngspice import source_power
from eqprop.neuromorphic.loihi.energy import per_inference

from .bounds import loop_limits, slowest_time_constant
from .converters import ADC, DAC, Converters
from .protocol import Layout, fixed_point

PHASE_SIGNS = {"free": 0, "plus": 1, "minus": -1}
SLOTS = {"free": 0, "plus": 1, "minus": 2}
#: options for transients: Newton to 1e-9 V; LTE relative 1e-6 (reltol sets both in SPICE)
TRANSIENT_OPTIONS = SpiceOptions(reltol=1e-6, vntol=1e-9, abstol=1e-15)
#: thermal noise: noise samples per fastest node time constant (the held samples' density is flat to within 0.1%
#: at that node's corner from 10 on; 20 leaves a margin)
NOISE_STEPS = 20
NOISE_MODES = ("sampled", "transient")


class CosimError(RuntimeError):
    """The co-simulation could not run as asked (an unstable loop, a boundary ngspice did not hit, ...)."""


@dataclass
class CosimResult:
    phases: tuple  # phase names, in order
    volts: dict  # phase -> (batch, n_free) V: node voltages at the end of the phase (ngspice's, not the ADC's)
    codes: dict  # phase -> (batch, n_free) ADC codes at the end of the phase
    settling_time: dict  # phase -> (batch,) s of circuit time (outputs inside 1% of their final value)
    energy: dict  # phase -> (batch,) J drawn from every source, amplifier and DAC during the phase
    converter_energy: dict  # phase -> (batch,) J of the conversions of the phase (Walden figure of merit)
    commands: list | None  # per parameter array: integer programming commands (None without learning)
    adc_clipped: int  # conversions outside the ADC's range (clipped to its end codes)
    dac_clipped: int  # DAC codes beyond its range (saturated)
    nudger_ops: int
    learner_ops: int
    learner_updates: int
    wall_s: float
    periods: int
    period: float
    trace: np.ndarray = field(repr=False, default=None)  # (periods + 1, n_free) V at every boundary
    n_free: int = 0
    nudged_periods: int = 0  # periods whose nudging DACs were driven (one neuron update per target each)
    n_targets: int = 0
    adc_lsb: float = 0.0
    code_trace: np.ndarray = field(repr=False, default=None)  # (periods + 1, n_free) ADC codes at every boundary
    input_clipped: int = 0  # input values beyond the input DACs' range (saturated)
    bridge_s: float = 0.0  # wall seconds inside the period boundaries (node reads, ADC, the Lava exchange)
    transient_s: float = 0.0  # wall seconds of the whole transient (ngspice's integration and the boundaries)

    @property
    def adc_volts(self) -> dict:
        """phase -> (batch, n_free) V: what the periphery read at the end of each phase (the ADC's codes x lsb)."""
        return {p: c * self.adc_lsb for p, c in self.codes.items()}

    def digital_energy(self) -> dict:
        """Loihi-figure estimate of the digital side (``neuromorphic.loihi.energy``): every ADC word a message,
        every Learner statistic a synaptic op, every nudging output of a nudged period a neuron update."""
        return per_inference(spikes=self.periods * self.n_free, synops=self.learner_updates,
                             neuron_updates=self.nudged_periods * self.n_targets)


class CoSimulation:
    """One network, its ngspice transient and its Lava periphery; ``run`` co-simulates a batch.

    capacitance: farads per free node; period: T in seconds (default the fastest node's RC, C / its total conductance);
    periods_per_phase: P (default: enough periods for the slowest mode to settle to ``settle_to`` volts);
    adc/dac: converter models (the DAC range defaults to the largest nudge current at beta = beta_max
    output conductances), or ``converters`` (a ``Converters`` spec: both, and the latency); latency: periods
    from a sample to the DAC current it decides; temperature: kelvin of the network's thermal noise in the
    transient (None: noiseless). ``allow_unstable``: run a period beyond the derived stability limit (to measure it)
    instead of refusing. ``source_transform``: the input drivers enter the transient as their Norton equivalents
    (exact: the same node voltages, noise and power; ``Drive.source_transform``), about 3x faster a training step;
    False writes every input conductance as a resistor from its driver."""

    def __init__(self, network: LayeredNetwork, capacitance: float = 1e-12, period: float | None = None,
                 periods_per_phase: int | None = None, adc: ADC | None = None, dac: DAC | None = None,
                 beta_max: float = 1.0, settle_to: float = 1e-7, ideal_diode=None,
                 options: SpiceOptions | None = None, seed: int = 0, allow_unstable: bool = False,
                 timeout: float = 600.0, latency: int = 0, converters: Converters | None = None,
                 temperature: float | None = None, noise: str = "sampled", source_transform: bool = True):
        if not isinstance(network, LayeredNetwork):
            raise NetworkError(f"co-simulation takes a LayeredNetwork, got {type(network).__name__}")
        network.require_ideal_amplifiers("the co-simulation")
        if not (np.isfinite(capacitance) and capacitance > 0):
            raise InputError(f"capacitance must be positive farads, got {capacitance!r}")
        self.network = network
        self.capacitance = float(capacitance)
        g_out = float(node_conductance(network)[-1].mean())
        if converters is not None:
            if adc is not None or dac is not None or latency:
                raise InputError("give the converters either as converters=Converters(...) or as adc, dac and latency, "
                                 "not both")
            self.converters = converters
            self.adc = converters.adc()
            self.dac = converters.dac(beta_max * g_out * 2 * self.adc.v_range)
            latency = converters.latency
        else:
            self.converters = Converters()
            self.adc = adc or ADC()
            self.dac = dac or DAC(bits=self.adc.bits, i_range=beta_max * g_out * 2 * self.adc.v_range)
        Converters(latency=latency)  # the one-line check of a latency
        self.latency = int(latency)
        if temperature is not None and not (np.isfinite(temperature) and 0 < temperature <= 1000):
            raise InputError(f"temperature must be kelvin in (0, 1000] (or None for no thermal noise), got {temperature!r}")
        self.temperature = None if temperature is None else float(temperature)
        if noise not in NOISE_MODES:
            raise InputError(f"noise must be one of {', '.join(NOISE_MODES)}, got {noise!r}")
        self.noise = noise
        self.source_transform = bool(source_transform)
        if self.temperature is not None:
            from eqprop.circuits.noise import ThermalNoise

            try:
                self.thermal = ThermalNoise(self.capacitance, temperature=self.temperature)
            except NetworkError as exc:
                raise InputError(str(exc)) from None
        tau_node = capacitance / max(float(s.max()) for s in node_conductance(network))
        self.tau_fast = tau_node
        self.period = float(period) if period is not None else tau_node
        if not (np.isfinite(self.period) and self.period > 0):
            raise InputError(f"period must be positive seconds, got {period!r}")
        hold = self.converters.hold
        #: what the slowest mode settles with: a tracking hold capacitor loads its node, and follows it through its
        #: switch with time constant ron * hold, for the part of each period it tracks
        self.c_settle = self.capacitance + (hold or 0.0)
        self.tau_track = 0.0 if hold is None else hold * self.converters.ron / (1.0 - self.converters.hold_time)
        self.tau_slow = max(slowest_time_constant(network, self.c_settle), self.tau_track)
        if periods_per_phase is not None and (isinstance(periods_per_phase, bool) or periods_per_phase < 2
                                              or int(periods_per_phase) != periods_per_phase):
            raise InputError(f"periods_per_phase must be an integer >= 2, got {periods_per_phase!r}")
        if not (np.isfinite(settle_to) and 0 < settle_to < 0.1):
            raise InputError(f"settle_to must be a voltage in (0, 0.1) V, got {settle_to!r}")
        self.settle_to = float(settle_to)
        self.fixed_P = None if periods_per_phase is None else int(periods_per_phase)
        self.P = self.fixed_P or self.periods_for(self.tau_slow)
        self.allow_unstable = allow_unstable
        self.options = options or TRANSIENT_OPTIONS
        self.ideal_diode = ideal_diode
        self.rng = np.random.default_rng(seed)
        self.timeout = float(timeout)
        self.pairs = target_pairs(network.to_graph())
        self.circuit = NgspiceCircuit(network, self.options, ideal_diode)
        free = self.circuit.free_nodes
        index = {n.lower(): i for i, n in enumerate(free)}
        self.pos = np.array([index[p.lower()] for p, _ in self.pairs])
        self.neg = np.array([index[m.lower()] if m != "0" else -1 for _, m in self.pairs])
        self.layout = Layout(network.sizes[0], network.n_targets, 2 * network.n_connections)
        self._lava = None
        self._stop = False  # set to make the bridge's waits on Lava give up (``_receive``)

    def _check_accumulators(self, x, B: int) -> None:
        """The Learner sums (D+ - D-)(D+ + D-) over a batch in int64: refuse converters that would overflow it."""
        net = self.network
        top = self.adc.max_code  # node codes are clipped by the ADC
        inputs = float(np.abs(net.encode_inputs(x)).max()) / self.adc.lsb
        drops = [net.bias_voltage / self.adc.lsb + top]  # bias statistics
        for c, g in enumerate(net.gains):
            m, s = fixed_point_gain(float(g))
            drops.append(abs(m) * (inputs if c == 0 else top) + 2 ** s * top)
        worst = max(drops)
        codes = max(inputs, top)
        if 4.0 * worst * worst * B >= 2.0 ** 63:  # |(D+ - D-)(D+ + D-)| <= 4 D^2 per sample
            raise InputError(f"an ADC of {self.adc.bits} bits over +-{self.adc.v_range:g} V overflows the Learner's "
                             f"64-bit accumulators at batch {B} (inputs up to {codes:.3g} codes); use fewer bits, "
                             "a wider range or a smaller batch")

    def periods_for(self, tau: float) -> int:
        """Periods for a mode of time constant tau to decay from 0.1 V to ``settle_to``."""
        return int(np.ceil(np.log(0.1 / self.settle_to) * tau / self.period)) + 1

    # ---- the digital side ---------------------------------------------------------------------------
    def _build_lava(self):
        _prepare_lava_import()
        from .learner.process import Learner
        from .nudger.process import Nudger

        net = self.network
        n_free = sum(net.free_sizes)
        gains = [fixed_point_gain(g) for g in net.gains]
        nudger = Nudger(n_nodes=n_free, pos=self.pos, neg=self.neg, layout=self.layout)
        register = self._open_register(net)
        learner = Learner(layer_sizes=list(net.free_sizes), n_inputs=net.sizes[0], gains=gains,
                          bias_code=int(np.rint(net.bias_voltage / self.adc.lsb)), layout=self.layout,
                          pairs=net.hidden_pairs, register=register)
        if learner.commands.shape != self._register.shape:
            raise CosimError(f"the Learner has {learner.commands.shape[0]} commands and its register "
                             f"{self._register.shape[0]}: the two counts must agree")
        nudger.ctrl_out.connect(learner.ctrl_in)
        nudger.adc_out.connect(learner.adc_in)
        self._lava = {"nudger": nudger, "learner": learner,
                      "started": False, "counted": (0, 0, 0)}
        self._gains = gains

    def _open_register(self, net) -> str:
        """The Learner's command register as the host sees it: a file of one float64 per parameter, mapped by
        both sides (in memory where /dev/shm exists), removed on ``close`` or when this object goes."""
        n_params = sum(w.size for w in net.weights) + sum(b.size for b in net.biases)
        self._close_register()
        folders = (["/dev/shm"] if os.access("/dev/shm", os.W_OK) else []) + [None]
        for folder in folders:  # written out in full: a full tmpfs fails here, not as a SIGBUS in Lava's process
            path = None
            _remove_orphans(folder)
            try:
                fd, path = tempfile.mkstemp(prefix=f"{REGISTER_PREFIX}{os.getpid()}-", suffix=".f64", dir=folder)
                with os.fdopen(fd, "wb") as f:
                    f.write(bytes(8 * n_params))
                break
            except OSError as e:
                if path is not None:
                    _remove(path)
                if folder is None:
                    raise CosimError(f"cannot write the Learner's {8 * n_params}-byte command register in "
                                     f"{tempfile.gettempdir()}: {e}; free some space there or set TMPDIR") from e
        self._register = np.memmap(path, dtype=np.float64, mode="r", shape=(n_params,))
        self._register_gone = weakref.finalize(self, _remove, path)
        return path

    def _close_register(self) -> None:
        remove = getattr(self, "_register_gone", None)
        if remove is not None:
            self._register = self._register_gone = None
            remove()

    def _run_lava(self, steps: int):
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        lv = self._lava
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        before = set(multiprocessing.active_children())
        lv["nudger"].run(condition=RunSteps(num_steps=steps, blocking=False), run_cfg=cfg)
        if not lv["started"]:
            lv["children"] = set(multiprocessing.active_children()) - before  # Lava's processes
        lv["started"] = True

    def _abandon_lava(self) -> None:
        """A Lava network that stopped answering: terminate its processes (they would hold pipes open)."""
        for p in (self._lava or {}).get("children", ()):
            p.terminate()
        self._lava = None
        self._close_register()

    def close(self) -> None:
        if self._lava is not None and self._lava["started"]:
            try:
                self._lava["nudger"].stop()
            except Exception:  # already stopped or never compiled
                pass
        self._lava = None
        self._close_register()

    # ---- one batch ----------------------------------------------------------------------------------
    def check_period(self, beta: float) -> dict:
        """The derived loop limits at this beta; CosimError when T is beyond the stability limit."""
        lim = loop_limits(self.network, self.capacitance, beta, latency=self.latency)
        if self.period >= lim["t_unstable"] and not self.allow_unstable:
            raise CosimError(f"period {self.period:.3g} s is beyond the nudging loop's stability limit "
                             f"{lim['t_unstable']:.3g} s at beta = {beta:.3g} S with {self.latency} period(s) of "
                             f"converter latency (output node RC {lim['tau']:.3g} s, loop gain {lim['loop_gain']:.3g}); "
                             "use a shorter period, a smaller beta or less latency")
        return lim

    def run(self, x, y=None, beta: float = 0.0, phases=("free",), learn: tuple | None = None,
            rates: list | None = None, record: bool = False) -> CosimResult:
        """Co-simulates the samples x (with targets y) through ``phases`` (names from free/plus/minus).

        learn: (hi, lo) phase names whose statistics difference the Learner accumulates per sample, or None;
        rates: per parameter array, the factor that turns an accumulated code-statistic into siemens of
        requested change divided by the programming quantum (the backend computes it); needed with learn."""
        net = self.network
        x, inputs_clipped = self.converters.quantise_inputs(net.check_inputs(x))  # the input drivers' DACs
        B = x.shape[0]
        phases = tuple(phases)
        for ph in phases:
            if ph not in PHASE_SIGNS:
                raise InputError(f"unknown phase {ph!r}; use free, plus or minus")
        if any(PHASE_SIGNS[p] for p in phases):
            if y is None:
                raise InputError("nudged phases need targets y")
            y = net.check_targets(y, B)
            if not (np.isfinite(beta) and beta > 0):
                raise InputError(f"beta must be a positive conductance (S) for nudged phases, got {beta!r}")
            self.check_period(beta)
            if "minus" in phases:
                _check_negative_beta(net, -beta)
        if learn is not None and (learn[0] not in phases or learn[1] not in phases or rates is None):
            raise InputError(f"learn={learn!r} needs two of the run's phases {phases} and rates")
        if learn is not None:
            self._check_accumulators(x, B)
        if self._lava is None:
            self._build_lava()
        if self.fixed_P is None:  # long enough for the slowest phase (a negative nudge slows the outputs)
            taus = [slowest_time_constant(net, self.c_settle, PHASE_SIGNS[p] * beta) for p in set(phases)]
            taus.append(self.tau_track)
            self.P = self.periods_for(max(taus))
        n_ph, P, T = len(phases), self.P, self.period
        K = B * n_ph * P
        t0 = _time.time()

        # control words, one per boundary m = 1..K
        src = net.encode_inputs(x) / self.adc.lsb
        y_codes = np.zeros((B, net.n_targets)) if y is None else np.rint(y / self.adc.lsb)
        beta_fp = fixed_point(beta * self.adc.lsb / self.dac.lsb) if beta else (0, 0)
        rate_fp = np.zeros((2 * net.n_connections, 2))
        if learn is not None:
            rate_fp = np.array([fixed_point(r) for r in rates], dtype=float)

        def word(m: int) -> np.ndarray:
            s_next, s_prev = min(m // (n_ph * P), B - 1), (m - 1) // (n_ph * P)
            sign = PHASE_SIGNS[phases[(m // P) % n_ph]] if m < K else 0
            latch = SLOTS[phases[((m - 1) // P) % n_ph]] if m % P == 0 else -1
            hi = lo = -1
            if learn is not None and m % (n_ph * P) == 0:
                hi, lo = SLOTS[learn[0]], SLOTS[learn[1]]
            emit = int(learn is not None and m == K)
            return self.layout.pack(sign, latch, hi, lo, emit, beta_fp, np.rint(src[s_prev]), y_codes[s_next],
                                    rate_fp)

        # the analog side: inputs switch at sample boundaries, a breakpoint at every period boundary
        rise = T / 100
        times, rows = [0.0], [x[0]]
        for s in range(1, B):
            ts = s * n_ph * P * T
            times += [ts, ts + rise]
            rows += [x[s - 1], x[s]]
        t_stop = (K + 1) * T
        times.append(t_stop)
        rows.append(x[-1])
        cv = self.converters
        drive = Drive(np.array(times), np.array(rows), T * np.arange(0, K + 2), max_step=T, dac_rout=cv.dac_rout,
                      sample_hold=None if cv.hold is None else (cv.hold, cv.ron, cv.hold_time * T),
                      source_transform=self.source_transform)
        in_spice = self.temperature is not None and self.noise == "transient"
        step = min(T, self.tau_fast) / NOISE_STEPS if in_spice else T
        netlist = to_netlist(net, x[:1], analysis="tran",
                             transient=Transient(self.capacitance, t_stop, step,
                                                 noise_temperature=self.temperature if in_spice else None),
                             options=self.options, ideal_diode=self.ideal_diode, control=False, drive=drive)
        circ = self.circuit
        circ._load_text(netlist.text, f"tran {T!r} {t_stop!r} 0 {T!r} uic")

        lv = self._lava
        self._run_lava(K)
        free = netlist.free_nodes
        read = free if cv.hold is None else [f"sh_{n}" for n in free]  # what the ADC converts
        dac_names = {f"i_dac{k}": k for k in range(net.n_targets)}
        state = {"m": 0, "dac": np.zeros(net.n_targets), "before": np.zeros(net.n_targets), "plot": None}
        settle = self.converters.dac_settle
        trace = np.zeros((K + 1, len(free)))
        everything = np.arange(len(free))
        nudged = np.array(sorted(set(self.pos.tolist()) | set(int(i) for i in self.neg if i >= 0)))
        codes_tr = np.zeros((K + 1, len(free)), dtype=np.int64)
        dac_tr = np.zeros((K + 1, net.n_targets))
        decided = np.zeros((K + 1, net.n_targets))  # the DAC current decided at each boundary (applied L later)
        commands = None
        lib = circ.lib
        from PySpice.Spice.NgSpice.Shared import ffi

        deadline = t0 + self.timeout
        clipped = [0, 0]
        factors = self._noise_factors(x, y, beta, phases) if self.temperature is not None and not in_spice else None

        def boundary(m: int) -> None:
            entered = _time.perf_counter()
            if state["plot"] is None:  # the names ngspice is asked for at every boundary, encoded once
                plot = state["plot"] = ffi.string(lib.ngSpice_CurPlot()).decode()
                state["names"] = [f"{plot}.{n}".encode() for n in read]
                state["time"] = f"{plot}.time".encode()
            # a phase's last boundary converts every free node (the Learner latches them); the others only the
            # nodes the nudge reads (the output pairs), as the converter energy counts. A recording run reads
            # and keeps every node's code at every boundary; random draws are made for every node either way,
            # so what the periphery gets does not depend on recording.
            conv = everything if m % P == 0 else nudged
            keep = everything if record else conv
            tinfo = lib.ngGet_Vec_Info(state["time"])
            t_last = tinfo.v_realdata[tinfo.v_length - 1]
            if abs(t_last - m * T) > 1e-6 * T:
                raise CosimError(f"ngspice's last time point before boundary {m} is at {t_last:.6g} s, not "
                                 f"{m * T:.6g} s (the breakpoint source did not pin it)")
            names = state["names"]
            for i in keep:
                info = lib.ngGet_Vec_Info(names[i])
                trace[m, i] = info.v_realdata[info.v_length - 1]
            v = trace[m]
            if factors is not None:  # the circuit's noise on what this conversion reads (its sample and phase)
                q = min(m - 1, K - 1) // P
                f = factors[phases[q % n_ph]][q // n_ph]
                z = self.rng.standard_normal(len(v))
                v = v + (f @ z if f.ndim == 2 else f * z)
            c = codes_tr[m - 1].copy()  # a node not converted this period keeps its last code
            c[keep] = self.adc.convert(v, self.rng)[keep]
            clipped[0] += int((np.abs(v[conv]) > self.adc.v_range).sum())
            codes_tr[m] = c
            lv["nudger"].send(word(m), c)
            d = np.rint(self._receive(lv["nudger"].reply())).astype(np.int64)
            clipped[1] += int((np.abs(d) > self.dac.max_code).sum())
            decided[m] = self.dac.amps(d)
            state["before"] = state["dac"]
            state["dac"] = decided[m - self.latency] if m > self.latency else np.zeros(net.n_targets)
            dac_tr[m] = state["dac"]
            state["bridge"] = state.get("bridge", 0.0) + _time.perf_counter() - entered
            if _time.time() > deadline:
                raise CosimError(f"the co-simulation ran past its {self.timeout:g} s limit at period {m} of {K}")

        def external(name: str, t: float) -> float:
            while state["m"] < K and t > (state["m"] + 1) * T * (1 + 1e-12):
                state["m"] += 1
                boundary(state["m"])
            k = dac_names[name.lower()]
            if settle:  # the DAC's output moves from the last code's current to the new one with its time constant
                a = np.exp(-max(t - state["m"] * T, 0.0) / settle)
                return state["dac"][k] + (state["before"][k] - state["dac"][k]) * a
            return state["dac"][k]

        ng = circ.ng
        ng.external, ng.external_error = external, None
        self._stop = False
        with _deadline(self.timeout) as expired:
            try:
                started = _time.perf_counter()
                ok = self._transient(circ)
                state["transient"] = _time.perf_counter() - started
            except BaseException:  # Ctrl-C, the deadline: nothing of this batch is kept
                self._stop = True  # a callback waiting on Lava returns
                ng.external_error = ng.external_error or _Interrupted()
                raise
            finally:
                ng.external = None
                if self._lava is None:  # abandoned on a failure inside the bridge (``_transient``)
                    pass
                elif not expired() and not isinstance(ng.external_error, (_Expired, _Interrupted)):
                    # Lava waits for every step's inputs: feed what ngspice did not reach, so that it finishes
                    for m in range(state["m"] + 1, K + 1):
                        lv["nudger"].send(self.layout.pack(), np.zeros(len(free)))
                        lv["nudger"].reply().recv()
                    lv["nudger"].wait()
                else:  # a ProcessModel failed or hung in its subprocess, or Ctrl-C: abandon this Lava network
                    self._abandon_lava()  # first: a callback waiting on Lava then fails, and ngspice can halt
                    circ._halt()
        if ng.external_error is not None:
            raise ng.external_error
        if not ok or state["m"] < K:
            raise SpiceError(f"the co-simulated transient stopped at period {state['m']} of {K}: "
                             f"{circ._last_messages()}", analysis="tran")
        if learn is not None:  # the Learner's commands of the batch's last boundary, read once the run ended
            commands = np.array(self._register, dtype=float)  # the register the Learner wrote (not Var.get)
        plot = circ._current_plot()
        tv = circ._vector(plot, "time")
        power = source_power(lambda name: circ._vector(plot, name), netlist)
        vols = {n: circ._vector(plot, n) for n in free}
        period_of = np.clip(np.ceil(tv / T - 1e-9).astype(int) - 1, 0, K)  # DAC value held during (mT, (m+1)T]
        for k, (p, mnode) in enumerate(self.pairs):
            vd = vols[p] - (vols[mnode] if mnode != "0" else 0.0)
            power = power + dac_tr[period_of, k] * vd
        circ._command("destroy all", check=False)
        wall = _time.time() - t0

        out_idx = np.nonzero(np.abs(netlist.readout).sum(0) > 0)[0]
        res = {k: {} for k in ("volts", "codes", "settling_time", "energy", "converter_energy")}
        n_read = len(nudged)
        at_end = len(free) if learn is not None else n_read
        for q, ph in enumerate(phases):
            ends = np.array([(s * n_ph + q + 1) * P for s in range(B)])
            starts = ends - P
            res["volts"][ph] = trace[ends]
            res["codes"][ph] = codes_tr[ends]
            res["settling_time"][ph] = np.array([_settling(trace[a:b + 1, out_idx], T) for a, b in zip(starts, ends)])
            res["energy"][ph] = np.array([_integrate(power, tv, a * T, b * T) for a, b in zip(starts, ends)])
            conv = ((P - 1) * n_read + at_end) * self.adc.energy
            if PHASE_SIGNS[ph]:
                conv += P * net.n_targets * self.dac.energy
            res["converter_energy"][ph] = np.full(B, conv)
        if commands is not None:
            shapes = [w.shape for w in net.weights] + [b.shape for b in net.biases]
            cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
            commands = [c.reshape(s) for c, s in zip(np.split(commands, cuts), shapes)]
        totals = (int(lv["nudger"].ops.get()[0]), int(lv["learner"].ops.get()[0]), int(lv["learner"].updates.get()[0]))
        nud_ops, lrn_ops, lrn_upd = (a - b for a, b in zip(totals, lv["counted"]))
        lv["counted"] = totals
        return CosimResult(phases, res["volts"], res["codes"], res["settling_time"], res["energy"],
                           res["converter_energy"], commands, clipped[0], clipped[1], nud_ops, lrn_ops, lrn_upd, wall, K,
                           T, trace if record else None, len(free), B * P * sum(1 for p in phases if PHASE_SIGNS[p]),
                           net.n_targets, self.adc.lsb, codes_tr if record else None, inputs_clipped,
                           state.get("bridge", 0.0), state.get("transient", 0.0))


    def _noise_factors(self, x, y, beta: float, phases) -> dict:
        """phase -> per sample a factor F of the noise covariance at the native equilibrium of that phase
        (``ThermalNoise.factors``: F F^T is the covariance, or the rms per node where the nodes are independent)."""
        from eqprop.circuits import solve

        out = {}
        for ph in set(phases):
            b = PHASE_SIGNS[ph] * beta
            eq = solve(self.network, x, y if b else None, b)
            out[ph] = self.thermal.factors(self.network, eq.voltages, b)
        return out


    def _receive(self, port):
        """Lava's next output on ``port`` (the Nudger's reply channel), waited for without blocking for ever: the
        bridge runs in ngspice's background thread, and a run that is stopped (Ctrl-C, the deadline) or a Lava
        process that died must let it return."""
        spins = 0
        while not port.probe():
            if self._stop:
                raise _Interrupted("the co-simulation was stopped while it waited for Lava")
            spins += 1
            _time.sleep(0 if spins < 500 else 1e-4)
        return port.recv()

    def _transient(self, circ) -> bool:
        """Runs the loaded transient in ngspice's background thread (its EXTERNAL sources call the bridge there)
        while this thread waits: Ctrl-C, the deadline's alarm and an error inside the bridge then stop it within a
        poll interval (in the foreground, ngspice held this thread inside C, PySpice's callback wrapper swallowed
        the KeyboardInterrupt, and the transient ran to its end). A failure there halts ngspice at once."""
        ng, lib = circ.ng, circ.lib
        ng.messages.clear()
        ng.bg_done = False
        if lib.ngSpice_Command(b"bg_run") != 0:
            return False
        wait = 1e-4
        while not ng.bg_done or lib.ngSpice_running():
            _time.sleep(wait)
            wait = min(2 * wait, 0.01)
            if ng.external_error is not None:  # the bridge failed: stop the transient now
                circ._halt()
                self._abandon_lava()
                break
        return not circ._failed()


class _Interrupted(CosimError):
    """The run was interrupted (Ctrl-C, SIGTERM) while ngspice ran."""


class _Expired(CosimError):
    """The run's deadline passed (raised by SIGALRM, wherever the main thread was waiting)."""


class _deadline:
    """Bounds a run: after ``seconds`` a SIGALRM raises _Expired in the main thread, which also interrupts a
    wait on a Lava channel whose far end died (Lava can hang instead of raising). Off the main thread it
    bounds nothing (signals only reach the main thread); the per-boundary time check still applies."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False

    def _raise(self, signum, frame):
        self.fired = True
        raise _Expired(f"the co-simulation got no answer within {self.seconds:g} s (a Lava ProcessModel failed or "
                       "hung in its subprocess); its Lava network is abandoned")

    def __enter__(self):
        import signal
        import threading

        self.armed = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if self.armed:
            self.old = signal.signal(signal.SIGALRM, self._raise)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return lambda: self.fired

    def __exit__(self, *exc):
        if self.armed:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


REGISTER_PREFIX = "eqprop-cosim-commands-"  # then the owner's process id, a dash and tempfile's random part


def _remove_orphans(folder) -> None:
    """Registers left by processes that no longer exist (killed with SIGKILL: no finalizer ran) are removed before
    a new one is made, so they do not pile up in /dev/shm; a live process's are left alone."""
    folder = folder or tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(folder) if n.startswith(REGISTER_PREFIX) and n.endswith(".f64")]
    except OSError:
        return
    for name in names:
        pid = name[len(REGISTER_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # the owner is alive (or not ours to signal): keep its file
        except ProcessLookupError:
            _remove(os.path.join(folder, name))
        except (PermissionError, OverflowError):
            continue


def _prepare_lava_import() -> None:
    """Lava's runtime runs in this process here (ngspice's callbacks talk to it), and importing it calls
    ``multiprocessing.set_start_method('fork')``, which raises once anything fixed the start method. An
    earlier 'fork' (Linux's default) is released so Lava can set it again; another method is refused."""
    from eqprop.neuromorphic.session import LavaError, prepare_lava_import

    try:
        prepare_lava_import("the co-simulation")
    except LavaError as e:
        raise CosimError(str(e)) from None


def fixed_point_gain(gain: float, bits: int = 8) -> tuple:
    """(m, s) with gain = m / 2^s: exact for a dyadic gain (4, 2.5), else rounded to ``bits`` fraction bits."""
    for s in range(bits + 1):
        m = gain * 2 ** s
        if m == int(m):
            return int(m), s
    return int(np.rint(gain * 2 ** bits)), bits


def _settling(trace, T: float, band: float = 0.01) -> float:
    """Circuit time from the phase's start until the outputs stay within ``band`` of their final value."""
    final = trace[-1]
    tol = band * max(float(np.abs(final).max()), 1e-12)
    outside = np.abs(trace - final).max(axis=1) > tol
    return float((np.nonzero(outside)[0].max() + 1) * T) if outside.any() else 0.0


def _integrate(power, t, a: float, b: float) -> float:
    sel = (t >= a) & (t <= b)
    return float(np.trapz(power[sel], t[sel])) if sel.sum() > 1 else 0.0
