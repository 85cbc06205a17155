"""ngspice in this process, through its shared library (PySpice's binding), one circuit loaded at a time.

A batch is one netlist swept by ``.dc`` (see ``to_netlist``): ngspice orders its matrix once per
analysis, which for these dense layers costs more than the solves, so one analysis per batch rather
than one ``op`` per sample is what makes ngspice usable inside a training loop. ngspice's own messages
are captured and quoted in errors instead of being spilled on the terminal. The shared library is not
re-entrant: one process holds one ngspice (see ``pool.py`` for parallel runs).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import time

import numpy as np

from eqprop.circuits.energy import kcl_residual
from eqprop.circuits.equilibrium import Equilibrium
from eqprop.circuits.errors import InputError
from eqprop.circuits.network import LayeredNetwork

from .options import SpiceOptions
from .writer import Netlist, Transient, free_nodes_and_readout, to_netlist

INSTALL_HINT = ("install it with `apt-get install -y ngspice libngspice0-dev` (Debian/Ubuntu), "
                "`brew install ngspice` (macOS) or `conda install -c conda-forge ngspice`; `make setup` does the "
                "first when run as root")

# Convergence aids for a sample the sweep could not settle, tried in order, each as extra .options of
# a fresh single-sample netlist (so no option outlives its attempt): plain Newton with ngspice's own
# gmin and source stepping, more steps and iterations, then straight to gmin stepping.
CONVERGENCE_AIDS = ("", "itl1=2000 gminsteps=100 srcsteps=100", "noopiter itl1=2000 gminsteps=100 srcsteps=100")
SWEEP_REPEATS = (2, 4, 8)  # solves per sample in successive sweeps (see operating_points)
DEADLINE_S = 3600.0  # s an analysis may run unless its caller says otherwise (``NgspiceCircuit.deadline``)
POLL_S = 0.01  # s, the longest wait between looks at ngspice's background thread (Ctrl-C is seen within it)
BACKGROUND = ("tran", "noise")  # analyses that run in ngspice's background thread whatever the deadline
BACKGROUND_TEXT = 1_000_000  # characters: netlists this large run every analysis in the background


@contextlib.contextmanager
def _quiet_stdout():
    """ngspice prints sweep progress ("Reference value ...") straight to file descriptor 1; hide it."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (e.g. some notebooks): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class SpiceError(RuntimeError):
    """ngspice failed: names the sample, the analysis and ngspice's own message."""

    def __init__(self, message, sample=None, analysis=None, ngspice_message=""):
        super().__init__(message)
        self.sample = sample
        self.analysis = analysis
        self.ngspice_message = ngspice_message

    def __reduce__(self):  # keeps sample and analysis when raised in a worker process
        return (type(self), (str(self), self.sample, self.analysis, self.ngspice_message))


class SpiceUnavailable(SpiceError):
    """libngspice could not be loaded."""


_LIBRARY = None


def ngspice_library():
    """This process's ngspice (loaded on first use); SpiceUnavailable says how to install it."""
    global _LIBRARY
    if _LIBRARY is not None:
        return _LIBRARY
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # its "Unsupported Ngspice version" and echo
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared
    except ImportError as exc:
        raise SpiceUnavailable(f"PySpice is not installed ({exc}); pip install PySpice==1.5") from exc

    class _Captured(NgSpiceShared):
        """Keeps ngspice's recent messages for error reports instead of logging them."""

        def __init__(self, *args, **kwargs):
            self.messages = collections.deque(maxlen=40)
            self.external = None  # co-simulation: callable(source name, time) -> its value (EXTERNAL sources)
            self.external_error = None  # what the callable raised (ngspice cannot take a Python exception)
            self.bg_done = True  # ngspice's background thread has ended (``NgspiceCircuit._analyse``)
            super().__init__(*args, **kwargs)

        def _external_value(self, value, time, name):
            if self.external_error is None:
                try:
                    if self.external is None:
                        raise SpiceError(f"the netlist has an EXTERNAL source {name!r} but nothing drives it "
                                         "(set the ngspice library's .external callable)")
                    value[0] = float(self.external(name, time))
                    return 0
                except BaseException as exc:  # kept and raised by the caller once ngspice returns
                    self.external_error = exc
            value[0] = 0.0
            return 0

        def get_vsrc_data(self, voltage, time, node, ngspice_id):
            return self._external_value(voltage, time, node)

        def get_isrc_data(self, current, time, node, ngspice_id):
            return self._external_value(current, time, node)

        @staticmethod
        def _background_thread_running(not_running, ngspice_id, user_data):
            """ngspice's background thread started (False) or ended (True; PySpice reads the flag the other way
            round and returns None, which cffi reports on stderr)."""
            from PySpice.Spice.NgSpice.Shared import ffi

            ffi.from_handle(user_data).bg_done = bool(not_running)
            return 0

        def send_char(self, message, ngspice_id):
            self.messages.append(message)
            if len(self._stdout) + len(self._stderr) > 1000:  # PySpice keeps every line otherwise
                self.clear_output()
            return 0

    try:
        _LIBRARY = _Captured.new_instance()
    except (OSError, ImportError) as exc:
        raise SpiceUnavailable(f"the ngspice shared library (libngspice) could not be loaded: {exc}; "
                               f"{INSTALL_HINT}") from exc
    return _LIBRARY


def ngspice_version() -> str | None:
    try:
        return str(ngspice_library().ngspice_version)
    except SpiceUnavailable:
        return None


class NgspiceCircuit:
    """A network simulated by this process's ngspice: batches of operating points, and transients.

    A batch is one netlist whose input sources are tables over a swept source (see ``to_netlist``), so
    ngspice orders its matrix once per batch and warm-starts every sample from the previous one. A
    sample on which the sweep fails is rescued alone with ngspice's convergence aids, then the sweep
    resumes; a sample that still fails raises SpiceError naming it.
    """

    def __init__(self, network, options: SpiceOptions | None = None, ideal_diode=None, nudge: str = "current"):
        self.options = options or SpiceOptions()
        self.ideal_diode = ideal_diode
        self.nudge = nudge
        self.ng = ngspice_library()
        self.lib = self.ng._ngspice_shared
        self.network = network
        self.deadline = DEADLINE_S  # seconds an analysis may run before it is halted (None: no limit)
        self._netlist(np.zeros((1, network.n_features)))  # refuses what SPICE cannot simulate, now
        self.load(network)

    def load(self, network) -> None:
        """Simulate ``network`` from now on (e.g. after training changed its conductances).

        Cheap: every analysis writes its own netlist, so only the node names and readout are kept here.
        """
        self.network = network
        self.free_nodes, self.readout = free_nodes_and_readout(network)

    def _netlist(self, x, y=None, beta=0.0, **kw) -> Netlist:
        return to_netlist(self.network, x, y, beta, nudge=self.nudge, options=self.options,
                          ideal_diode=self.ideal_diode, control=False, **kw)

    # ---- talking to ngspice -------------------------------------------------------------------
    def _load_text(self, text: str, card: str | None = None) -> None:
        """Loads a netlist without its analysis cards (they run explicitly), or with ``card`` as its only one."""
        self._command("remove circuit", check=False)  # frees the previous circuit
        self._command("destroy all", check=False)
        self.ng.messages.clear()
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("*")]
        lines = [line for line in lines if not line.startswith((".dc", ".op", ".tran", ".noise"))]
        if card is not None:
            lines.insert(len(lines) - 1 if lines and lines[-1].lower() == ".end" else len(lines), "." + card)
        with _quiet_stdout():
            self.ng.load_circuit("* eqprop-hw\n" + "\n".join(lines))
        errors = [m for m in self.ng.messages if "error" in m.lower()]
        if errors:
            raise SpiceError(f"ngspice rejected the netlist: {' | '.join(errors[-3:])}", analysis="load",
                             ngspice_message="\n".join(self.ng.messages))

    def _command(self, command: str, check: bool = True) -> int:
        rc = self.lib.ngSpice_Command(command.encode("ascii"))
        if rc != 0 and check:
            raise SpiceError(f"ngspice command {command!r} failed: {self._last_messages()}",
                             ngspice_message="\n".join(self.ng.messages))
        return rc

    def _run(self, command: str) -> bool:
        """Runs an analysis in this thread; False when ngspice reports a failure (its messages stay in
        self.ng.messages). Ctrl-C cannot stop it (``_analyse`` can): the co-simulation's EXTERNAL sources call back
        into this thread's Lava controllers, so it runs here."""
        self.ng.messages.clear()
        with _quiet_stdout():
            rc = self._command(command, check=False)
        return rc == 0 and not self._failed()

    def _failed(self) -> bool:
        bad = ("no convergence", "singular", "error", "aborted", "timestep too small")
        return any(b in m.lower() for m in list(self.ng.messages) for b in bad)

    def _analyse(self, text: str, card: str) -> bool:
        """Loads the netlist with its analysis ``card`` and runs it in ngspice's background thread while this one
        waits: Ctrl-C (and SIGTERM, which the CLI turns into it) then reaches Python within a poll interval and
        halts ngspice. Run in the foreground, ngspice holds this thread inside C and PySpice's callbacks swallow
        the KeyboardInterrupt, so a long analysis ran to its end. ``self.deadline`` seconds (None: none) bound
        it (an hour unless the caller sets another: ``DEADLINE_S``): past them ngspice is halted and a SpiceError
        says so. False when ngspice reports a failure.

        Only with the deadline off (None) do operating points and sweeps of small circuits run in the foreground,
        where Ctrl-C waits for the batch in hand. The background costs them nothing since this thread looks
        every 2% of the time run so far: 16-sample sweeps of 128-32-20, medians of 15, 84.6-86.0 ms in the
        background against 84.9-86.2 ms in the foreground (with waits that doubled up to POLL_S it was 97.5
        against 84.6). Netlists of a megabyte or more (1568-100-20: an operating point takes seconds) always run
        in the background."""
        if self.deadline is None and not card.startswith(BACKGROUND) and len(text) < BACKGROUND_TEXT:
            self._load_text(text)
            return self._run(card)
        self._load_text(text, card)
        self.ng.messages.clear()
        self.ng.bg_done = False
        start = time.monotonic()
        with _quiet_stdout():
            if self.lib.ngSpice_Command(b"bg_run") != 0:
                return False
            try:
                while not self.ng.bg_done or self.lib.ngSpice_running():
                    # a look every 2% of the time run so far (at least 20 us, at most POLL_S): an analysis of
                    # milliseconds is picked up within 2% of its time (doubling waits cost up to its whole time)
                    time.sleep(min(POLL_S, max(2e-5, 0.02 * (time.monotonic() - start))))
                    if self.deadline is not None and time.monotonic() - start > self.deadline:
                        raise SpiceError(f"ngspice ran past its deadline of {self.deadline:g} s ({card.split()[0]}); "
                                         "halted (a longer one: --deadline SECONDS, or .deadline in Python)",
                                         analysis=card.split()[0])
            except BaseException:
                self._halt()
                raise
        return not self._failed()

    def _halt(self) -> None:
        """Stops ngspice's background thread and waits until it has stopped."""
        self.lib.ngSpice_Command(b"bg_halt")
        end = time.monotonic() + 10.0
        while not self.ng.bg_done and time.monotonic() < end:
            time.sleep(POLL_S)

    def _last_messages(self, n: int = 4) -> str:
        lines = [m.partition(" ")[2].strip() for m in list(self.ng.messages)[-n:]]
        return " | ".join(line for line in lines if line) or "(no message)"

    def _vector(self, plot: str, name: str, required: bool = True):
        from PySpice.Spice.NgSpice.Shared import ffi
        info = self.lib.ngGet_Vec_Info(f"{plot}.{name}".encode("ascii"))
        if info == ffi.NULL or info.v_realdata == ffi.NULL:
            if not required:
                return None
            raise SpiceError(f"ngspice produced no vector {name!r} in plot {plot!r}", analysis=plot)
        return np.frombuffer(ffi.buffer(info.v_realdata, info.v_length * 8), dtype=np.float64).copy()

    def _current_plot(self) -> str:
        from PySpice.Spice.NgSpice.Shared import ffi
        return ffi.string(self.lib.ngSpice_CurPlot()).decode()

    def _read(self, netlist: Netlist):
        """Free-node voltages (rows, n_free) and power delivered by the sources (rows,) of the last analysis."""
        plot = self._current_plot()
        first = self._vector(plot, netlist.free_nodes[0], required=False)
        if first is None:
            return np.empty((0, len(netlist.free_nodes))), np.empty(0)
        volts = np.stack([self._vector(plot, n) for n in netlist.free_nodes], axis=1)
        return volts, source_power(lambda name: self._vector(plot, name), netlist)

    # ---- analyses -----------------------------------------------------------------------------
    def operating_points(self, x, y=None, beta: float = 0.0):
        """Free-node voltages (batch, n_free), rescues needed per sample, and static power per sample (W).

        ngspice's sweep Newton can stop short after a large jump from the previous sample (we measured
        up to 1e-5 V off, although every tolerance is tight); solving the same sample again from its own
        answer removes that. So every sample is swept ``repeats`` times in a row and accepted once its
        last two solves agree within ``options.sweep_tol``; the others are swept again with more
        repeats, and what is still unsettled is rescued alone (operating point + convergence aids).
        """
        x = self.network.check_inputs(x)
        if beta != 0.0 and y is None:
            raise InputError("a nudged operating point (beta != 0) needs targets y")
        y = None if y is None else self.network.check_targets(y, x.shape[0])
        B = x.shape[0]
        volts = np.empty((B, len(self.free_nodes)))
        power, rescues = np.empty(B), np.zeros(B, dtype=int)
        pending = np.arange(B)
        for repeats in SWEEP_REPEATS:
            if not len(pending):
                break
            v, p = self._sweep(x[pending], None if y is None else y[pending], beta, repeats)
            settled = np.abs(v[:, -1] - v[:, -2]).max(axis=1) <= self.options.sweep_tol
            done = pending[:len(v)][settled]
            volts[done], power[done] = v[settled, -1], p[settled]
            pending = np.setdiff1d(pending, done)
        for b in pending:
            rescues[b], netlist = self._rescue(x[b:b + 1], None if y is None else y[b:b + 1], beta, int(b))
            v, p = self._read(netlist)
            volts[b], power[b] = v[0], p[0]
        self._command("destroy all", check=False)
        return volts, rescues, power

    def _sweep(self, x, y, beta, repeats: int):
        """Voltages (samples, repeats, n_free) and last-repeat power of the samples the sweep completed."""
        xr = np.repeat(x, repeats, axis=0)
        yr = None if y is None else np.repeat(y, repeats, axis=0)
        netlist = self._netlist(xr, yr, beta)
        ok = self._analyse(netlist.text, f"dc v_sample 0 {netlist.batch - 1} 1")  # a failure leaves the rows it finished
        v, p = self._read(netlist)
        complete = len(v) // repeats
        if not ok:
            complete = max(complete - 1, 0)  # the sample the sweep failed in is not trusted
        n = complete * repeats
        return v[:n].reshape(complete, repeats, v.shape[1]), p[:n].reshape(complete, repeats)[:, -1]

    def _rescue(self, x1, y1, beta, sample: int) -> int:
        """One sample alone through the convergence aids; returns (attempts it took, its netlist)."""
        netlist = self._netlist(x1, y1, beta)
        for attempt, aids in enumerate(CONVERGENCE_AIDS, start=1):
            text = netlist.text
            if aids:
                text = text.replace("\n.end\n", f"\n.options {aids}\n.end\n")
            if self._analyse(text, "op"):
                return attempt, netlist
        raise SpiceError(f"ngspice operating point failed for sample {sample} even with gmin and source "
                         f"stepping: {self._last_messages()}", sample=sample, analysis="op",
                         ngspice_message="\n".join(self.ng.messages))

    def equilibrium(self, x, y=None, beta: float = 0.0) -> Equilibrium:
        x = self.network.check_inputs(x)
        volts, rescues, power = self.operating_points(x, y, beta)
        return make_equilibrium(self.network, self.free_nodes, self.readout, x, y, beta, volts, rescues, power)

    def transient(self, x, transient: Transient) -> dict:
        """One sample from a reset state: time (n_t,), free-node voltages (n_t, n_free), source power (n_t,)."""
        netlist = self._netlist(x, analysis="tran", transient=transient)
        if not self._analyse(netlist.text, f"tran {transient.t_step!r} {transient.t_stop!r} uic"):
            raise SpiceError(f"ngspice transient failed: {self._last_messages()}", sample=0, analysis="tran",
                             ngspice_message="\n".join(self.ng.messages))
        plot = self._current_plot()
        volts, power = self._read(netlist)
        out = {"time": self._vector(plot, "time"), "voltages": volts, "power": power}
        self._command("destroy all", check=False)
        return out


    def noise_spectra(self, x, capacitance: float, f_start: float, f_stop: float, per_decade: int = 50) -> dict:
        """ngspice's own small-signal noise analysis (``noise``) of every free node at the operating point of
        input x: each resistor's thermal noise 4kT/R from ngspice's device models, the node capacitances (F)
        included, controlled sources and behavioural diodes noiseless. Returns the frequencies (Hz), each node's
        one-sided output noise density (n_f, n_free; V^2/Hz) and ngspice's integrated rms over [f_start, f_stop]
        (n_free; V; the density integrated here where ngspice's total is NaN, as its 39 sometimes gives)."""
        if not (0 < f_start < f_stop and np.isfinite(f_stop)):
            raise InputError(f"noise analysis needs 0 < f_start < f_stop, got {f_start!r}, {f_stop!r}")
        netlist = self._netlist(x, analysis="tran", transient=Transient(capacitance, 1.0, 0.5))
        element = netlist.sources[0][0]
        source = element.lower()  # the command is not lower-cased as the netlist is
        # ngspice refers the noise to an input source with an AC value; the value does not change the output noise
        text = "\n".join(line + " AC 1" if line.split(" ", 1)[0] == element else line for line in netlist.text.splitlines())
        freq, spectra, totals = None, [], []
        for node in netlist.free_nodes:
            if not self._analyse(text, f"noise v({node}) {source} dec {int(per_decade)} {f_start!r} {f_stop!r}"):
                raise SpiceError(f"ngspice noise analysis of {node} failed: {self._last_messages()}", analysis="noise",
                                 ngspice_message="\n".join(self.ng.messages))
            totals_plot = self._current_plot()
            spectrum_plot = f"noise{int(totals_plot[len('noise'):]) - 1}"
            totals.append(float(self._vector(totals_plot, "onoise_total")[0]))
            density = self._vector(spectrum_plot, "onoise_spectrum")
            if freq is None:
                freq = self._vector(spectrum_plot, "frequency")
                if freq.size == 2 * density.size:  # stored as complex numbers
                    freq = freq[::2]
            spectra.append(density**2)
            self._command("destroy all", check=False)
        density = np.stack(spectra, axis=1)
        totals = np.array(totals)
        lost = ~np.isfinite(totals)  # ngspice 39 now and then reports a NaN total beside a finite spectrum
        if lost.any():
            totals[lost] = np.sqrt(np.trapz(density[:, lost], freq, axis=0))
        return {"frequency": freq, "density": density, "total_rms": totals}


def source_power(vector, netlist: Netlist):
    """Power delivered by the voltage sources and the amplifiers (W), from ngspice's vectors.

    A SPICE branch current flows into the + terminal, so a source delivers -V I. An amplifier delivers
    V_out I_load (gain V_in I_load for an ideal one) and its CCCS absorbs V_in I_load / gain; op-amps also draw
    their quiescent power (``OpAmp.quiescent_power`` each). A transistor-level amplifier's supplies are sources in
    its instance (``Netlist.amplifier_supplies``): what they deliver is read instead of V_out I_load and Iq.
    """
    total = netlist.quiescent_power
    for element, node in netlist.sources:
        total = total - vector(node) * vector(f"{element.lower()}#branch")
    for inst, node, gain, out in netlist.amplifiers:
        v_in = vector(node)
        i_load = vector(f"v.{inst}.v_sense#branch")
        if netlist.amplifier_supplies:
            total = total - v_in / gain * i_load
            for name, volts in netlist.amplifier_supplies:
                total = total - volts * vector(f"v.{inst}.{name}#branch")
        else:
            total = total + (vector(out) - v_in / gain) * i_load
    if netlist.norton is not None:  # input drivers written as Norton equivalents: sum_ij G_ij x_i (x_i - v_j)
        times, values, G, nodes = netlist.norton
        t = vector("time")
        x = np.column_stack([np.interp(t, times, values[:, i]) for i in range(values.shape[1])])
        v = np.column_stack([vector(n) for n in nodes]) if nodes else np.zeros((len(t), 0))
        total = total + (x * x) @ G.sum(1) - np.einsum("tj,tj->t", x @ G, v)
    return total


def make_equilibrium(network, free_nodes, readout, x, y, beta, volts, rescues, power) -> Equilibrium:
    """Wraps ngspice voltages in the Equilibrium every backend returns; the KCL residual is recomputed natively."""
    prediction = volts @ readout.T
    layer_sizes = network.free_sizes if isinstance(network, LayeredNetwork) else None
    residual = float("nan")
    if isinstance(network, LayeredNetwork) and all(
            n is None or not n.diode.hard for n in network.neurons):
        layers = np.split(volts, np.cumsum(layer_sizes)[:-1], axis=1)
        res = kcl_residual(network, network.encode_inputs(x), layers, y, beta)
        residual = float(max(np.abs(r).max(initial=0.0) for r in res))
    info = {"rescued": rescues, "static_power": power, "free_nodes": free_nodes}
    return Equilibrium(volts, x, prediction, int(rescues.max(initial=0)), residual, beta, y, layer_sizes,
                       "ngspice", info)

