"""Lava in a child process with a deadline on every command, so a hung Lava run cannot hang the caller.

Lava's runtime runs each ProcessModel in its own process and can block forever when one of them fails
(instead of raising). The session therefore lives in a child interpreter (``python -m
eqprop.neuromorphic.session_main``, not a multiprocessing child: Lava insists on setting the 'fork' start
method at import) that leads its own process group and talks to us over an authenticated socket;
each command waits at most ``timeout`` seconds, after which the whole group (Lava's processes too) is
killed and LavaError names the command and the deadline. Parameters are validated here, before Lava
sees them.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Listener

import numpy as np

from eqprop.circuits.errors import InputError, NetworkError
from eqprop.circuits.resource import Resource
from eqprop.circuits.network import LayeredNetwork
from eqprop.circuits.serialize import network_from_data, network_to_data


class LavaError(RuntimeError):
    """A Lava run failed or exceeded its deadline; names the command and the cause."""


def _serve(conn, alpha, threshold):
    lava_net = None
    while True:
        cmd, args = conn.recv()
        try:
            if cmd == "stop":
                if lava_net is not None:
                    lava_net.stop()
                conn.send(("ok", None))
                return
            if cmd == "settle":
                meta, arrays, sources, targets, beta, tol, max_steps, chunk = args
                net = network_from_data(meta, arrays)
                if lava_net is not None and lava_net.batch != sources.shape[0]:
                    lava_net.stop()
                    lava_net = None
                if lava_net is None:
                    from eqprop.neuromorphic.simulation.network import LavaEqPropNetwork
                    lava_net = LavaEqPropNetwork(net, sources.shape[0], alpha, threshold)
                else:
                    lava_net.set_network(net)
                conn.send(("ok", lava_net.settle(sources, targets, beta, tol, max_steps, chunk)))
            elif cmd == "plastic":  # the on-chip learning path: a fresh plastic network per call
                meta, arrays, sources, targets, beta, eta, nudging, tol, max_steps, chunk = args
                from eqprop.neuromorphic.onchip.plastic import PlasticEqPropNetwork
                plastic = PlasticEqPropNetwork(network_from_data(meta, arrays), alpha)
                result = plastic.learn(sources, targets, beta, eta, nudging, tol, max_steps, chunk)
                plastic.stop()  # not after a failure: a wedged runtime can block stop(); close kills it
                conn.send(("ok", result))
            elif cmd == "onchip_train":  # on-chip training: a fresh plastic network per call
                from eqprop.neuromorphic.onchip.network import OnchipTraining
                meta, arrays, rest = args
                conn.send(("ok", OnchipTraining(network_from_data(meta, arrays), *rest).run()))
            elif cmd == "loihi":  # the bit-accurate Loihi path: a whole data set in one Lava execution
                from eqprop.neuromorphic.loihi.network import run_loihi
                conn.send(("ok", run_loihi(*args)))
            elif cmd == "ping":
                conn.send(("ok", os.getpid()))
            elif cmd == "sleep":  # for tests of the deadline
                import time
                time.sleep(args)
                conn.send(("ok", None))
        except Exception as exc:  # report, never hang: the parent re-raises it as LavaError
            if cmd == "settle":
                lava_net = None  # its runtime may be wedged: never stop() it (that can block); close kills it
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))


def prepare_lava_import(what: str = "this run") -> None:
    """Before Lava's runtime is imported into this process: importing it calls
    ``multiprocessing.set_start_method('fork')``, which raises once anything fixed the start method. An earlier
    'fork' (Linux's default) is released so Lava can set it again; another method is refused in one line."""
    import multiprocessing as mp

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    current = mp.get_start_method(allow_none=True)
    if current == "fork":
        mp.set_start_method(None, force=True)
    elif current is not None:
        raise LavaError(f"this process's multiprocessing start method is {current!r}; Lava, which {what} runs in this "
                        "process, needs 'fork': run it in a process that does not set another method")


def _checked_samples(net, sources, targets) -> tuple:
    """(sources, targets) as float arrays of one sample per row, or a one-line InputError."""
    if getattr(net, "hidden_pairs", False):
        raise NetworkError("Lava's on-chip learning models single-ended hidden layers only; this network has "
                           "differential ones (hidden_pairs): train it with the native or lava backend")
    sources, targets = np.asarray(sources, float), np.asarray(targets, float)
    if sources.ndim != 2 or targets.shape != (sources.shape[0], net.n_targets):
        raise InputError(f"sources (samples, {net.sizes[0]}) and targets (samples, {net.n_targets}) expected, got "
                         f"{sources.shape} and {targets.shape}")
    if not (np.isfinite(sources).all() and np.isfinite(targets).all()):
        raise InputError("inputs or targets hold NaN/inf")
    return sources, targets


class LavaSession(Resource):
    """One Lava network in a child process. ``timeout`` bounds every command (seconds)."""

    def __init__(self, alpha: float = 1.0, threshold: float = 0.0, timeout: float = 120.0):
        if not 0 < alpha <= 1:
            raise InputError(f"alpha (dt / tau) must be in (0, 1], got {alpha}")
        if not (threshold >= 0 and np.isfinite(threshold)):
            raise InputError(f"threshold must be >= 0 volts, got {threshold}")
        if not timeout > 0:
            raise InputError(f"timeout must be positive seconds, got {timeout}")
        self.timeout = timeout
        key = secrets.token_bytes(16)
        listener = Listener(family="AF_UNIX", authkey=key)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "eqprop.neuromorphic.session_main", listener.address, key.hex(), repr(alpha),
             repr(threshold), str(os.getpid())], start_new_session=True)  # its own group: killpg takes Lava too
        accepted = []
        waiter = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
        waiter.start()
        waiter.join(60)
        if not accepted:
            self.kill()
            listener.close()
            raise LavaError("the Lava session process did not start within 60 s (is lava-nc installed?)")
        self._conn = accepted[0]
        listener.close()

    def _call(self, cmd, args=None, timeout=None):
        if self._proc is None:
            raise LavaError("the Lava session is closed")
        self._conn.send((cmd, args))
        deadline = self.timeout if timeout is None else timeout
        if not self._conn.poll(deadline):
            self.kill()
            raise LavaError(f"Lava command {cmd!r} did not finish within {deadline:g} s; the Lava processes were "
                            "stopped (a process model may have failed in its subprocess); raise the timeout if "
                            "the network is just slow")
        status, value = self._conn.recv()
        if status == "error":
            raise LavaError(f"Lava command {cmd!r} failed: {value}")
        return value

    def settle(self, net: LayeredNetwork, sources, targets, beta, tol, max_steps, chunk) -> dict:
        if not isinstance(net, LayeredNetwork):
            raise NetworkError(f"the Lava backend runs LayeredNetworks, got {type(net).__name__}")
        if not (np.isfinite(sources).all() and (targets is None or np.isfinite(targets).all())):
            raise InputError("inputs or targets hold NaN/inf")
        meta, arrays = network_to_data(net)
        return self._call("settle", (meta, arrays, sources, targets, float(beta), tol, max_steps, chunk))

    def plastic_update(self, net: LayeredNetwork, sources, targets, beta, eta, nudging="centered", tol=1e-13,
                       max_steps=5000, chunk=50) -> dict:
        """The on-chip learning path (float models only): the conductance update that Lava's learning engine
        accumulates over the batch, one sample per run (see ``onchip.plastic``)."""
        if not isinstance(net, LayeredNetwork):
            raise NetworkError(f"the Lava backend runs LayeredNetworks, got {type(net).__name__}")
        if nudging not in ("positive", "centered"):
            raise InputError(f"on-chip nudging is 'positive' or 'centered', got {nudging!r}")
        if not (np.isfinite(beta) and beta > 0 and np.isfinite(eta) and eta > 0):
            raise InputError(f"beta and eta must be positive and finite, got beta={beta}, eta={eta}")
        sources, targets = _checked_samples(net, sources, targets)
        meta, arrays = network_to_data(net)
        return self._call("plastic", (meta, arrays, sources, targets, float(beta), float(eta), nudging, tol,
                                      max_steps, chunk))

    def onchip_train(self, net: LayeredNetwork, sources, targets, beta: float, scales, batch: int, steps: int = 40,
                     alpha: float = 1.0, int_map=None, seed: int = 0, hold: bool = False,
                     neurons: str = "float", backward=None, timeout: float | None = None) -> dict:
        """On-chip training over ``sources`` (``onchip.network.OnchipTraining``): the conductances Lava's
        learning engine leaves after every sample's phases and one update per ``batch`` samples. With
        ``int_map`` (``onchip.map.build_map``), Lava's bit-approximate engine on that integer mapping;
        ``hold``: its tags are never applied and come back as ``held`` (the update before weight rounding);
        ``neurons="integer"`` (with ``int_map``): integer neurons (``onchip.network.integer_neurons``); ``backward``:
        the backward copies' mantissas a previous run left (None: the forward copies'); ``timeout``: seconds for
        this run (None: the session's)."""
        if not isinstance(net, LayeredNetwork):
            raise NetworkError(f"the Lava backend runs LayeredNetworks, got {type(net).__name__}")
        sources, targets = _checked_samples(net, sources, targets)
        if not (np.isfinite(beta) and beta > 0):
            raise InputError(f"beta must be positive and finite, got {beta}")
        if len(scales) != 2 * net.n_connections or not all(np.isfinite(s) and s >= 0 for s in scales):
            raise InputError(f"scales: one rate >= 0 per parameter array ({2 * net.n_connections}), got {scales}")
        meta, arrays = network_to_data(net)
        return self._call("onchip_train", (meta, arrays, (sources, targets, float(beta), [float(s) for s in scales],
                                                          int(batch), int(steps), float(alpha), int_map, int(seed),
                                                          bool(hold), str(neurons), backward)), timeout=timeout)

    def loihi(self, program, sources_int, targets_int=None, steps: int = 64, phases: int = 1,
              record_hidden: bool = True) -> dict:
        """The Loihi path's Lava run (``loihi.network.run_loihi``): the samples one after another on Lava's
        bit-accurate models; the same dict as ``loihi.emulator.emulate``."""
        sources_int = np.asarray(sources_int)
        if sources_int.ndim != 2 or sources_int.dtype.kind != "i":
            raise InputError(f"sources must be a (samples, inputs) integer array (program.sources_int), got "
                             f"{sources_int.dtype} {sources_int.shape}")
        if targets_int is not None and np.shape(targets_int)[0] != sources_int.shape[0]:
            raise InputError(f"{np.shape(targets_int)[0]} target rows for {sources_int.shape[0]} samples")
        if not (isinstance(steps, (int, np.integer)) and steps > 0 and isinstance(phases, (int, np.integer))
                and 0 < phases <= len(program.layers[-1].beta)):
            raise InputError(f"steps must be a positive integer and phases 1..{len(program.layers[-1].beta)} (one "
                             f"beta per phase), got steps={steps}, phases={phases}")
        return self._call("loihi", (program, sources_int, targets_int, int(steps), int(phases), record_hidden))

    @property
    def pid(self):
        return None if self._proc is None else self._proc.pid

    def kill(self) -> None:
        """Kills the child and every Lava process it started (its process group)."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait(5)
        self._proc = None

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            self._call("stop", timeout=30)
        except LavaError:
            pass
        self.kill()

    def release(self) -> None:  # at garbage collection: no message to a Lava process that may hang
        self.kill()

