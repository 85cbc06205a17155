"""Any network from ``eqprop.circuits`` as a readable ngspice netlist.

The netlist is the circuit of Kendall et al. (2020), element for element:
- every input feature is a voltage source (two, at +x and -x, with input pairs), every bias node a
  source at its voltage;
- every conductance is a resistor of 1/G ohms, named after the two nodes it joins;
- every neuron is the ``neuron`` subcircuit: a diode from the node to the upper rail and one from the
  lower rail to the node (``DiodeClamp``);
- every amplified connection is driven by the ``bidir_amp`` subcircuit: a VCVS of gain a forward, and
  a CCCS of 1/a that draws from the driving node the current the VCVS delivers, sensed by a 0 V source;
- nudging (beta != 0) injects beta * (y_k - prediction_k) at the output nodes of target k.

Nudging forms. ``nudge='current'`` writes it as a VCCS (the -beta * prediction part, a conductance
beta between the two nodes of an output pair) plus a DC current source beta * y_k: it is exact for
the energy F = E + beta/2 ||R V_out - y||^2 and works for negative beta (centered nudging).
``nudge='conductance'`` writes the Thevenin twin: a resistor 1/beta in series with a source at y_k
between the pair (or from a single output node to ground); the same energy, but beta must be > 0.
A conductance from each node of a pair to its own target voltage (+-y/2) is *not* the same: it
nudges the common mode too, which is the cost sum_i (V_i - y_i)^2 / 2 instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eqprop.circuits.devices import BOLTZMANN, ShockleyDiode, spice_number
from eqprop.circuits.errors import InputError, NetworkError
from eqprop.circuits.network import GraphNetwork, LayeredNetwork, conductances

from .options import SpiceOptions

NUDGE_FORMS = ("current", "conductance")
ANALYSES = ("op", "tran")


@dataclass
class Transient:
    """A transient from a reset state: every free node starts at 0 V with ``capacitance`` farads to ground, or with
    its own where a graph's node carries one (node attribute ``capacitance``: a crossbar's wire nodes,
    ``circuits.parasitics.wired``)."""

    capacitance: float
    t_stop: float
    t_step: float
    #: K: with a temperature, every conductance G gets a current source of two-sided density 2 k T G at low
    #: frequency, its thermal noise: a Gaussian sample every t_step, held (``trrandom``; flat to about 1 / (2
    #: t_step): t_step well below the fastest node time constant). Not ``trnoise``: ngspice 39's generator
    #: behind it (Wallace's method, a pool of draws transformed in place) lets its variance wander by tens of
    #: percent over millions of draws, within a run and on through the next runs of the same ngspice, where
    #: ``trrandom``'s Gaussian draws keep theirs (``benchmarks/noise_sources.py``, docs/noise.md). Figures from
    #: the noise are statistical: one realisation per run.
    noise_temperature: float | None = None

    def __post_init__(self):
        for name in ("capacitance", "t_stop", "t_step"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise NetworkError(f"Transient.{name} must be positive and finite, got {value!r}")
        if self.t_step >= self.t_stop:
            raise NetworkError(f"Transient.t_step ({self.t_step:g} s) must be shorter than t_stop ({self.t_stop:g} s)")
        t = self.noise_temperature
        if t is not None and not (np.isfinite(t) and t > 0):
            raise NetworkError(f"Transient.noise_temperature must be positive kelvin (or None), got {t!r}")

    def noise_amplitude(self, g: float) -> float:
        """rms (A) of the noise samples, one held per t_step, that give conductance g's two-sided density
        2 k T g at low frequency (white samples of rms s held for t_step each have density s^2 t_step there)."""
        return float(np.sqrt(2.0 * BOLTZMANN * self.noise_temperature * g / self.t_step))


@dataclass
class Drive:
    """How a co-simulation drives a transient (``eqprop.cosim``): every input source follows a piecewise-linear
    wave, every output pair (or single output) gets an EXTERNAL current source ``I_dac<k>`` whose value the
    caller's callback gives (the nudging DAC), and a source with a corner at every ``sync`` time makes
    ngspice place a time point exactly there (the converters' sampling instants)."""

    times: np.ndarray  # (n,) s, increasing: corners of the input waves
    inputs: np.ndarray  # (n, n_features): input values at those times
    sync: np.ndarray  # (m,) s: period boundaries
    max_step: float  # s: ngspice's largest time step (at most the period)
    dac_rout: float | None = None  # ohms from each DAC terminal to ground (a real current DAC's output); None: ideal
    #: (hold capacitance F, switch on-resistance ohms, hold time s): a track-and-hold at every free node, its switch
    #: open from each sync time for the hold time (the conversion), closed otherwise; the converters read the hold
    #: capacitors ``sh_<node>``. None: the converters read the nodes themselves (ideal sampling)
    sample_hold: tuple | None = None
    #: write each input driver's conductances into a free node as its Norton equivalent (a conductance to ground
    #: and a current source following the inputs), an exact source transformation because the drivers are ideal
    #: voltage sources: the same node voltages, the same thermal noise (the parallel conductances' noise currents
    #: add to the equivalent's), and the drivers' power recomputed from the node voltages (``Netlist.norton``).
    #: ngspice then loads one element per node instead of one per input conductance and the input nodes leave its
    #: matrix: about 4x less time per Newton iteration on 128-100-20
    source_transform: bool = False

    def __post_init__(self):
        self.times, self.inputs, self.sync = (np.asarray(a, dtype=float) for a in (self.times, self.inputs, self.sync))
        if self.times.ndim != 1 or self.inputs.shape[:1] != self.times.shape or np.any(np.diff(self.times) <= 0):
            raise NetworkError("Drive.times must increase and give one row of Drive.inputs each")
        if self.sync.ndim != 1 or np.any(np.diff(self.sync) <= 0) or not (self.max_step > 0):
            raise NetworkError("Drive.sync must increase and Drive.max_step be positive")
        if self.sample_hold is not None:
            c, r, t = self.sample_hold
            period = float(np.min(np.diff(self.sync))) if len(self.sync) > 1 else np.inf
            if not (c > 0 and r > 0 and 0 < t < period and all(np.isfinite(v) for v in (c, r, t))):
                raise NetworkError(f"Drive.sample_hold must be (farads > 0, ohms > 0, 0 < hold time < the period), got "
                                   f"{self.sample_hold!r}")
        if self.dac_rout is not None and not (np.isfinite(self.dac_rout) and self.dac_rout > 0):
            raise NetworkError(f"Drive.dac_rout must be positive ohms (or None), got {self.dac_rout!r}")


@dataclass
class Netlist:
    """SPICE text plus the names a runner needs to drive it and read it back (all lower case, as ngspice)."""

    text: str
    free_nodes: list  # node names in the order of Equilibrium.voltages
    batch: int  # samples swept by the analysis (1: a plain operating point)
    sources: list  # (element, node) of every voltage source (inputs, biases, rails)
    amplifiers: list  # (instance, input node, gain, output node)
    n_targets: int
    readout: np.ndarray = field(repr=False, default=None)  # R: prediction = R @ V_free
    quiescent_power: float = 0.0  # W: what the amplifiers draw from their supplies besides their output power
    # (name, volts) of the supply sources inside each amplifier instance (transistor-level ones): their power is
    # read from ngspice instead of the output power plus quiescent power of a macromodel
    amplifier_supplies: tuple = ()
    #: with ``Drive.source_transform``: (times (n,), driver values (n, n_drivers), G (n_drivers, n_nodes), node
    #: names): the input drivers that became Norton equivalents, for their power (``source_power``)
    norton: tuple | None = None

    def __str__(self) -> str:
        return self.text

    def write(self, path) -> Path:
        path = Path(path)
        path.write_text(self.text)
        return path


_num = spice_number


def to_netlist(network, x=None, y=None, beta: float = 0.0, *, nudge: str = "current",
               options: SpiceOptions | None = None, analysis: str = "op", transient: Transient | None = None,
               ideal_diode: ShockleyDiode | None = None, control: bool = True,
               title: str | None = None, drive: Drive | None = None) -> Netlist:
    """The netlist of ``network`` with its inputs set from ``x`` (one sample, or zeros when omitted).

    A batch x (B > 1 samples) gives one netlist that solves them all: each input source becomes a
    table over a sweep source ``V_sample`` (``B_in3p in3p 0 V = pwl(v(sample), 0, x0, 1, x1, ...)``)
    and ``.dc V_sample 0 B-1 1`` settles sample after sample, each Newton starting from the previous
    equilibrium. ngspice orders its sparse matrix once per analysis, and for these densely connected
    layers that ordering costs more than the solve, so one sweep per batch is much faster than one
    operating point per sample.

    y, beta: targets and nudging conductance (siemens) of the nudged phase; nudge: 'current' or
    'conductance' (see the module docstring); analysis: 'op' or 'tran' (needs ``transient``);
    ideal_diode: the Shockley model that stands in for ideal diodes, which SPICE cannot simulate
    (the header says so); control: add the ``.control`` block that prints every free node voltage
    when run as ``ngspice -b file.cir``; drive: a co-simulation's input waves, nudging DACs and period
    boundaries (a transient only; x then only sets nothing but the shape, and beta must be 0).
    """
    if nudge not in NUDGE_FORMS:
        raise NetworkError(f"unknown nudge form {nudge!r}; use one of {NUDGE_FORMS}")
    if analysis not in ANALYSES:
        raise NetworkError(f"unknown analysis {analysis!r}; use one of {ANALYSES}")
    if analysis == "tran" and transient is None:
        raise NetworkError("analysis='tran' needs transient=Transient(capacitance, t_stop, t_step)")
    if not np.isfinite(beta):
        raise InputError(f"beta must be finite, got {beta}")
    if nudge == "conductance" and beta < 0:
        raise InputError("nudge='conductance' realises beta as a resistor and needs beta > 0; "
                         "use nudge='current' for negative beta (centered nudging)")
    options = options or SpiceOptions()
    if isinstance(network, LayeredNetwork):
        describe = _describe_layered(network)
        graph_net = network.to_graph()
    elif isinstance(network, GraphNetwork):
        graph_net = network
        describe = [f"graph network: {graph_net.graph.number_of_nodes()} nodes, "
                    f"{sum(1 for _ in conductances(graph_net.graph))} conductances"]
    else:
        raise NetworkError(f"to_netlist takes a LayeredNetwork or GraphNetwork, got {type(network).__name__}")
    if drive is not None:
        if analysis != "tran" or beta != 0.0:
            raise NetworkError("a Drive belongs to a transient (analysis='tran') whose nudge is its DACs (beta=0)")
        if drive.inputs.shape[1] != graph_net.n_features:
            raise InputError(f"Drive.inputs has {drive.inputs.shape[1]} features; the network has "
                             f"{graph_net.n_features}")
    x = np.zeros((1, graph_net.n_features)) if x is None else graph_net.check_inputs(x)
    if analysis == "tran" and x.shape[0] != 1:
        raise InputError(f"a transient netlist holds one sample; x has {x.shape[0]}")
    if beta != 0.0 and y is None:
        raise InputError(f"beta = {beta:g} nudges the outputs towards targets; give y (one row of targets per sample), "
                         "or beta = 0 for the free phase")
    if x.shape[0] == 0:
        raise InputError("x holds no samples; give at least one row of inputs")
    if beta != 0.0 or y is not None:
        y = graph_net.check_targets(y, x.shape[0])
    return _Writer(graph_net, options, ideal_diode, drive).write(
        x, y, beta, nudge, analysis, transient, control, title, describe)


def free_nodes_and_readout(network) -> tuple:
    """(free node names in Equilibrium order, R with prediction = R @ V_free), without writing a netlist."""
    if isinstance(network, LayeredNetwork):
        free = network.free_node_names()
        R = np.hstack([np.zeros((network.n_targets, len(free) - network.sizes[-1])), network.readout_matrix])
        return free, R
    free = [str(n) for n in network.free_nodes]
    R = np.zeros((network.n_targets, len(free)))
    for i, n in enumerate(network.free_nodes):
        ro = network.graph.nodes[n].get("readout")
        if ro is not None:
            R[ro[0], i] = ro[1]
    return free, R


def _describe_layered(net: LayeredNetwork) -> list:
    s = net.sizes
    inputs = f"{net.n_features} features as +x/-x source pairs" if net.input_pairs else f"{s[0]} input sources"
    outputs = f"{net.n_targets} output pairs read as V+ - V-" if net.readout == "pairs" else f"{s[-1]} output nodes"
    lines = [f"layered network {'-'.join(map(str, s))}: {inputs}, hidden layers {list(s[1:-1])}, {outputs}",
             f"bias sources at +-{net.bias_voltage:g} V; amplifier gains {list(net.gains[1:])}"]
    if not net.amplifier.ideal:
        lines.append(net.amplifier.describe())
    return lines


class _Writer:
    def __init__(self, net: GraphNetwork, options: SpiceOptions, ideal_diode, drive: Drive | None = None):
        self.drive = drive
        self.net = net
        self.g = net.graph
        self.options = options
        self.ideal_diode = ideal_diode
        self.clamps = []  # distinct DiodeClamps, in order of first use
        for n in net.free_nodes:
            clamp = self.g.nodes[n].get("neuron")
            if clamp is not None and clamp not in self.clamps:
                self.clamps.append(clamp)
        seen = {}
        for n in self.g.nodes:
            if not _safe_name(str(n)):
                raise NetworkError(f"node name {n!r} cannot be a SPICE node: use letters, digits and _ only")
            key = str(n).lower()
            if key in seen:  # ngspice lower-cases every name: these would be one node
                raise NetworkError(f"node names {seen[key]!r} and {n!r} differ only in case, and SPICE ignores case: "
                                   "rename one of them")
            if key == "gnd":
                raise NetworkError(f"node name {n!r} is ground in ngspice; rename it")
            seen[key] = n

    def write(self, x, y, beta, nudge, analysis, transient, control, title, describe) -> Netlist:
        net, g = self.net, self.g
        free = [str(n) for n in net.free_nodes]
        header = [f"* {line}" for line in (title or "eqprop-hw network").splitlines()]
        header += [f"* {line}" for line in describe]
        header.append(f"* {len(free)} free nodes, {sum(1 for _ in conductances(g))} conductances; generated by eqprop-hw "
                      "(eqprop.netlists.to_netlist)")
        body, notes = [], []
        models = self._models(notes)
        batch = x.shape[0]
        sources, source_lines = self._sources(x)
        neurons = self._neurons()
        amps, amp_out = self._amplifiers()
        resistors = self._resistors(amp_out)
        norton = None
        if self.drive is not None and self.drive.source_transform:
            resistors, currents, norton, drivers = self._norton(resistors)
            sources = [(e, n) for e, n in sources if n not in drivers]
            source_lines = [ln for ln in source_lines if ln.split()[1] not in drivers] + currents
        nudge_lines = self._nudges(y, beta, nudge)
        header += [f"* {n}" for n in notes]
        if beta != 0.0:
            shown = np.round(y[0], 6).tolist()
            header.append(f"* nudged phase: beta = {_num(beta)} S ({nudge} form); targets of sample 0: {shown}")
        if batch > 1:
            header.append(f"* {batch} samples: inputs are tables over V_sample, swept by .dc (sample b at V_sample = b)")
        body += models
        body += ["", "* sources: inputs (sign * x[feature]), biases, diode rails"] + source_lines
        if neurons:
            body += ["", "* neurons: diode clamps to the rails"] + neurons
        if amps:
            body += ["", "* bidirectional amplifiers (input node, output node)"] + amps
        body += ["", "* conductances as resistors (ohms = 1/G)"] + resistors
        if nudge_lines:
            body += ["", "* nudging: beta * (y - prediction) into the outputs"] + nudge_lines
        if self.drive is not None:
            body += ["", "* co-simulation: nudging DACs (EXTERNAL current sources) and the period boundaries"]
            body += self._dacs() + [_pwl_source("V_sync", "sync", self.drive.sync, np.zeros(len(self.drive.sync))),
                                    ".options method=gear"]
            if self.drive.sample_hold is not None:
                body += self._sample_hold(free)
        if analysis == "tran":
            own = {str(n): c for n, c in g.nodes(data="capacitance") if c is not None}
            body += ["", f"* node capacitances for the transient ({_num(transient.capacitance)} F each"
                     + (f", {len(own)} nodes their own" if own else "") + ")"]
            body += [f"C_{n} {n} 0 {_num(own.get(n, transient.capacitance))} IC=0" for n in free]
            if transient.noise_temperature is not None:
                held = _num(transient.t_step)
                body += ["", f"* thermal noise of every conductance at {transient.noise_temperature:g} K: current "
                         f"sources of two-sided density 2kTG at low frequency, Gaussian samples held {held} s each "
                         "(trrandom)"]
                body += self._noise_sources(resistors, transient)
        body += ["", self.options.card()]
        if analysis == "op":
            command = "op" if batch == 1 else f"dc V_sample 0 {batch - 1} 1"
            if not control:
                body.append("." + command)
            else:
                # quit 0: without it ngspice -b exits 1 ("no simulations run") after a .control-only deck
                body += [".control", "set numdgt=16", f"set width={26 * (len(free) + 2)}", command,
                         "print " + " ".join(f"v({n})" for n in free), "quit 0", ".endc"]
        else:
            tmax = f" 0 {_num(self.drive.max_step)}" if self.drive is not None else ""
            body.append(f".tran {_num(transient.t_step)} {_num(transient.t_stop)}{tmax} uic")
            if control:
                body += [".control", "set numdgt=16", "run", "quit 0", ".endc"]
        body.append(".end")
        network_sources = {str(n) for n in self.net.sources}
        generated = [node for _, node in sources if node not in network_sources] + list(amp_out.values())
        generated += [f"target{k}" for k in range(net.n_targets)] if nudge == "conductance" and beta else []
        self._check_generated_names(source_lines + neurons + amps + resistors + nudge_lines, generated)
        text = "\n".join(header + [""] + body) + "\n"
        _, R = free_nodes_and_readout(net)
        supplies = tuple(getattr(self.net.amplifier, "supply_sources", ()))
        quiescent = 0.0 if supplies else len(self.amp_list) * getattr(self.net.amplifier, "quiescent_power", 0.0)
        return Netlist(text, free, batch, sources, self.amp_list, net.n_targets, R, quiescent, supplies, norton)

    def _norton(self, resistors) -> tuple:
        """(resistors without the input drivers' own plus ``R_norton__<node>``, the ``I_norton__<node>`` lines,
        ``Netlist.norton``, the drivers' names): each node that input drivers feed through plain conductances gets
        1 / their sum to ground and the sum of G x(t) as a piecewise-linear current into it (see
        ``Drive.source_transform``). ``resistors`` are ``_resistors``' lines, one per conductance in
        ``conductances``' order."""
        g, drive = self.g, self.drive
        keys = [n for n in self.net.sources if g.nodes[n]["role"] == "input"]
        drivers = [str(n) for n in keys]
        index = {n: i for i, n in enumerate(drivers)}
        nodes, G, kept = [], {}, []
        for line, (u, v, gval, gain, _) in zip(resistors, conductances(g)):
            inner = [e for e in (str(u), str(v)) if e not in index]
            if gain is not None or len(inner) != 1:  # an amplified edge, or one between two drivers: as it is
                kept.append(line)
                continue
            node, src = inner[0], (str(u) if str(v) == inner[0] else str(v))
            if node not in G:
                nodes.append(node)
                G[node] = np.zeros(len(drivers))
            G[node][index[src]] += gval
        Gm = np.array([G[n] for n in nodes]).T if nodes else np.zeros((len(drivers), 0))
        values = np.array([g.nodes[n]["sign"] * drive.inputs[:, g.nodes[n]["feature"]] for n in keys]).T
        currents = values @ Gm  # (times, nodes)
        kept += [f"R_norton__{n} {n} 0 {_num(1.0 / Gm[:, j].sum())}" for j, n in enumerate(nodes)]
        lines = ["* the input drivers as Norton equivalents (an exact source transformation: Drive.source_transform)"]
        lines += [f"I_norton__{n} 0 {n} PWL(" + " ".join(f"{_num(t)} {_num(i)}" for t, i in
                                                      zip(drive.times, currents[:, j])) + ")"
                  for j, n in enumerate(nodes)]
        return kept, lines, (drive.times, values, Gm, nodes), set(drivers)

    def _check_generated_names(self, element_lines, generated_nodes) -> None:
        """The writer names rails, amplifier outputs, targets and elements after the network's nodes; a node
        name can make one of them clash (a node called 'rail_hi', or nodes 'a' + 'b__c' and 'a__b' + 'c',
        whose resistors would both be R_a__b__c). Refuse those rather than write a netlist that merges them."""
        network_nodes = {str(n).lower(): n for n in self.g.nodes}
        for node in generated_nodes:
            if node.lower() in network_nodes:
                raise NetworkError(f"node name {network_nodes[node.lower()]!r} is also a node the netlist writer "
                                   f"makes ({node}: rails, amplifier outputs, targets, the sample sweep); rename it")
        elements = {}
        for line in element_lines:
            name = line.split()[0].lower()
            if name in elements:
                raise NetworkError(f"node names make two elements both called {line.split()[0]} ({elements[name]!r} "
                                   f"and {line!r}); rename the nodes so that no name contains '__'")
            elements[name] = line

    def _models(self, notes) -> list:
        lines = []
        needs_amp = any(gain is not None for *_, gain, _ in conductances(self.g))
        if needs_amp:
            lines += self.net.amplifier.spice_lines()
        for k, clamp in enumerate(self.clamps):
            sfx = self._clamp_suffix(k)
            stand_in = self.ideal_diode if clamp.diode.hard else None
            body, models, more_notes = clamp.diode.spice_lines(sfx, self.options, stand_in)
            notes += more_notes
            head = f".subckt neuron{sfx} node hi lo{clamp.diode.spice_subckt_params()}"
            lines += [head] + body + [f".ends neuron{sfx}"] + models
        return lines

    def _clamp_suffix(self, k: int) -> str:
        return "" if len(self.clamps) == 1 else str(k)

    def _sources(self, x):
        """(element, node) of every voltage source, and their lines; batch inputs become sample tables."""
        batch = x.shape[0]
        sources, lines = [], []
        if batch > 1:
            sources.append(("V_sample", "sample"))
            lines.append("V_sample sample 0 DC 0")
        for n in self.net.sources:
            d = self.g.nodes[n]
            if d["role"] == "input" and self.drive is not None:
                sources.append((f"V_{n}", n))
                lines.append(_pwl_source(f"V_{n}", n, self.drive.times, d["sign"] * self.drive.inputs[:, d["feature"]]))
            elif d["role"] == "input" and batch > 1:
                sources.append((f"B_{n}", n))
                lines.append(f"B_{n} {n} 0 V = {_table(d['sign'] * x[:, d['feature']])}")
            else:
                v = d["sign"] * x[0, d["feature"]] if d["role"] == "input" else d["voltage"]
                sources.append((f"V_{n}", n))
                lines.append(f"V_{n} {n} 0 DC {_num(v)}")
        for k, clamp in enumerate(self.clamps):
            sfx = self._clamp_suffix(k)
            for side, v in (("hi", clamp.v_high), ("lo", clamp.v_low)):
                sources.append((f"V_rail{sfx}_{side}", f"rail{sfx}_{side}"))
                lines.append(f"V_rail{sfx}_{side} rail{sfx}_{side} 0 DC {_num(v)}")
        return sources, lines

    def _neurons(self) -> list:
        lines = []
        for n in self.net.free_nodes:
            clamp = self.g.nodes[n].get("neuron")
            if clamp is not None:
                sfx = self._clamp_suffix(self.clamps.index(clamp))
                params = clamp.diode.spice_instance_params(self.g.nodes[n].get("index"))
                lines.append(f"X_neuron_{n} {n} rail{sfx}_hi rail{sfx}_lo neuron{sfx}{params}")
        return lines

    def _amplifiers(self):
        """One amplifier per (driving node, gain): its output node feeds every conductance it drives."""
        out, lines, self.amp_list = {}, [], []
        for u, v, _, gain, driver in conductances(self.g):
            if gain is None:
                continue
            key = (driver, float(gain))
            if key not in out:
                count = sum(1 for k in out if k[0] == key[0])
                node = f"{key[0]}_a" + (str(count + 1) if count else "")
                out[key] = node
                inst = f"X_amp_{node}"
                half = "_inv" if key[1] < 0 else ""  # a differential amplifier's inverting half: its own die values
                offset = self.g.nodes[key[0]].get("amp_offset" + half)
                vos = "" if offset is None else f" vos={_num(offset)}"
                factor = self.g.nodes[key[0]].get("amp_gain_factor" + half)
                vos += "" if factor is None else f" fb={_num(factor)}"
                sub = self.net.amplifier.spice_subckt(key[1])
                lines.append(f"{inst} {key[0]} {node} {sub} params: gain={_num(key[1])}{vos}")
                self.amp_list.append((inst.lower(), str(key[0]), key[1], node.lower()))
        return lines, out

    def _resistors(self, amp_out) -> list:
        lines = []
        for u, v, g, gain, drv in conductances(self.g):
            if gain is not None:
                other = v if drv == u else u
                a, b = amp_out[(drv, float(gain))], other
                name = f"R_{drv}__{other}" + ("__inv" if gain < 0 else "")  # a differential amplifier's inverting half
            else:
                a, b, name = u, v, f"R_{u}__{v}"
            lines.append(f"{name} {a} {b} {_num(1.0 / g)}")
        return lines

    @staticmethod
    def _noise_sources(resistors, transient) -> list:
        """One noise current source across each resistor (``R_<name> a b ohms``): its thermal noise, Gaussian
        samples held for t_step each (``trrandom`` type 2: mean 0, the rms ``noise_amplitude``)."""
        lines = []
        for line in resistors:
            name, a, b, ohms = line.split()
            amp = transient.noise_amplitude(1.0 / float(ohms))
            lines.append(f"I_nz{name[1:]} {a} {b} dc 0 trrandom(2 {_num(transient.t_step)} 0 {_num(amp)} 0)")
        return lines

    def _nudges(self, y, beta, form):
        if beta == 0.0:
            return []
        by_target = {}
        for n in self.net.output_nodes:
            k, s = self.g.nodes[n]["readout"]
            by_target.setdefault(int(k), []).append((str(n), float(s)))
        lines = []
        for k in sorted(by_target):
            nodes = by_target[k]
            signs = sorted(s for _, s in nodes)
            if len(nodes) == 2 and signs == [-1.0, 1.0]:
                p = next(n for n, s in nodes if s > 0)
                m = next(n for n, s in nodes if s < 0)
            elif len(nodes) == 1 and nodes[0][1] == 1.0:
                p, m = nodes[0][0], "0"
            else:
                lines += self._general_nudge(k, nodes, y[:, k], beta, form)
                continue
            if form == "current":
                lines.append(f"G_nudge{k} {p} {m} {p} {m} {_num(beta)}")
                lines.append(_current_source(f"nudge{k}", m, p, beta * y[:, k]))
            else:
                lines.append(f"R_nudge{k} {p} target{k} {_num(1.0 / beta)}")
                lines.append(_voltage_source(f"target{k}", f"target{k}", m, y[:, k]))
        return lines

    def _dacs(self) -> list:
        """``I_dac<k>``: the nudging DAC of target k, an EXTERNAL current pushed into its + node from its - node; with
        ``Drive.dac_rout``, each of its terminals has that output resistance to ground."""
        lines = []
        rout = self.drive.dac_rout
        for k, (p, m) in enumerate(target_pairs(self.net)):
            lines.append(f"I_dac{k} {m} {p} external")
            if rout is not None:
                lines += [f"R_dacout{k}{t} {n} 0 {_num(rout)}" for t, n in (("p", p), ("m", m)) if n != "0"]
        return lines

    def _sample_hold(self, free) -> list:
        """A track-and-hold per free node: a voltage-controlled switch to a hold capacitor ``sh_<node>``, its clock
        low (switch open, holding) from each sync time for the hold time, high (tracking) otherwise."""
        c, r, t_hold = self.drive.sample_hold
        sync = self.drive.sync
        T = float(sync[1] - sync[0])
        edge = T * 1e-3
        lines = ["", f"* track-and-hold at every free node: {_num(c)} F behind a {_num(r)} ohm switch, holding for "
                 f"{_num(t_hold)} s from each period boundary",
                 f".model sw_sh sw vt=0.5 vh=0.2 ron={_num(r)} roff=1e12",
                 f"V_clk clk 0 PULSE(1 0 {_num(sync[1])} {_num(edge)} {_num(edge)} {_num(t_hold)} {_num(T)})"]
        for n in free:
            lines += [f"S_sh_{n} {n} sh_{n} clk 0 sw_sh", f"C_sh_{n} sh_{n} 0 {_num(c)} IC=0"]
        return lines

    def _general_nudge(self, k, nodes, yk, beta, form) -> list:
        """Any signed combination of nodes: current into n is beta s_n (y_k - sum_m s_m V_m)."""
        if form != "current":
            raise NetworkError(f"target {k} is read from {len(nodes)} nodes with signs {[s for _, s in nodes]}; "
                               "only nudge='current' can drive such a readout")
        lines = []
        for n, s in nodes:
            lines.append(_current_source(f"nudge{k}_{n}", "0", n, beta * s * yk))
            for m, t in nodes:
                lines.append(f"G_nudge{k}_{n}_{m} {n} 0 {m} 0 {_num(beta * s * t)}")
        return lines


def target_pairs(net: GraphNetwork) -> list:
    """(+ node, - node or '0') of every target, in target order; NetworkError for other readouts."""
    by_target = {}
    for n in net.output_nodes:
        k, s = net.graph.nodes[n]["readout"]
        by_target.setdefault(int(k), []).append((str(n), float(s)))
    pairs = []
    for k in range(net.n_targets):
        nodes = by_target.get(k, [])
        signs = sorted(s for _, s in nodes)
        if len(nodes) == 2 and signs == [-1.0, 1.0]:
            pairs.append((next(n for n, s in nodes if s > 0), next(n for n, s in nodes if s < 0)))
        elif len(nodes) == 1 and signs == [1.0]:
            pairs.append((nodes[0][0], "0"))
        else:
            raise NetworkError(f"target {k} is read from nodes {nodes}; a nudging DAC drives an output pair "
                               "(+1, -1) or a single output (+1)")
    return pairs


def _pwl_source(name, node, times, values) -> str:
    return f"{name} {node} 0 PWL(" + " ".join(f"{_num(t)} {_num(v)}" for t, v in zip(times, values)) + ")"


def _table(values) -> str:
    """pwl(v(sample), 0, v0, 1, v1, ...): the value of sample b at V_sample = b, exactly."""
    return "pwl(v(sample), " + ", ".join(f"{b}, {_num(v)}" for b, v in enumerate(values)) + ")"


def _current_source(name, node_from, node_to, values) -> str:
    """A DC current pushed from node_from into node_to: one value, or a table over the samples."""
    if len(values) == 1:
        return f"I_{name} {node_from} {node_to} DC {_num(values[0])}"
    return f"B_{name} {node_from} {node_to} I = {_table(values)}"


def _voltage_source(name, plus, minus, values) -> str:
    if len(values) == 1:
        return f"V_{name} {plus} {minus} DC {_num(values[0])}"
    return f"B_{name} {plus} {minus} V = {_table(values)}"


def _safe_name(name: str) -> bool:
    return name.replace("_", "").isalnum() and name.isascii() and name.lower() != "0"
