"""Batches of ngspice operating points on Ray: long-lived actors, each holding one loaded ngspice.

The same contract as ``SpicePool`` (``equilibrium``, ``load``, ``close``), so a backend can use either.
Each actor is a process with its own ngspice shared library; it builds its circuit once and reloads it
only when the network's version changes (a training step), then settles the chunks of samples it is
sent, each as one swept netlist.

What travels: the network (its conductance arrays, about 1.3 MB for the 1568-100-20 Kendall network) is
put into Ray's object store once per version and fetched once by each actor; each chunk ships its
inputs and targets (batch x features floats) and returns the free-node voltages, rescue counts, static
power and the actor's resident memory. On a multi-node cluster every node needs what ``make setup``
installs here (eqprop-hw, PySpice and libngspice); nothing else is shipped.

An actor that dies is replaced and its chunk retried once; a second loss raises ``SpiceError`` naming
the samples, so no sample is silently dropped. Actors whose ngspice memory passes ``memory_limit_mb``
are replaced after the batch (ngspice never returns the memory of an unloaded circuit).
"""
from __future__ import annotations

import os

from eqprop.circuits.resource import Resource

from .ngspice import DEADLINE_S, NgspiceCircuit, SpiceError
from .options import SpiceOptions
from .pool import ChunkedEquilibrium, check_deadline, settle_chunk, worker_count

RAY_HINT = "install it with `pip install 'ray>=2.9'` (make setup installs it with the dev extras)"


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise SpiceError(f"the Ray cluster needs the ray package: {RAY_HINT}") from exc
    return ray


def connect(address: str | None = None, num_cpus: int | None = None):
    """Joins the Ray cluster at ``address`` ('auto', 'ray://host:10001', 'host:6379') or, with None or
    'local', starts a local Ray instance with ``num_cpus`` CPUs; does nothing if Ray is already running."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local instance needs no token; a cluster brings its own
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address in (None, "", "local", "ray"):
            ray.init(num_cpus=num_cpus, object_store_memory=256 * 2**20, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise SpiceError(f"cannot reach the Ray cluster at {address!r} ({exc}); start it with `ray start --head` "
                         "or pass --cluster ray for a local instance") from None
    return ray


class _NgspiceActor:
    """One ngspice, loaded once, reloaded when the network's version changes."""

    def __init__(self, settings):
        self.settings = settings
        self.state = {"version": None, "circuit": None}

    def settle(self, version, network, x, y, beta, first, deadline=None):
        return settle_chunk(self.state, version, network, self.settings, x, y, beta, first, deadline)

    def pid(self):
        return os.getpid()


class RaySpicePool(ChunkedEquilibrium, Resource):
    """Settles batches with ngspice on ``workers`` Ray actors (one CPU each)."""

    def __init__(self, network, workers: int | None = None, options: SpiceOptions | None = None,
                 ideal_diode=None, nudge: str = "current", chunk: int = 64, address: str | None = None,
                 memory_limit_mb: float = 2000.0, deadline: float | None = DEADLINE_S):
        self.settings = {"options": options or SpiceOptions(), "ideal_diode": ideal_diode, "nudge": nudge}
        self.workers = worker_count(workers)
        self.deadline = check_deadline(deadline)
        self.chunk = max(1, int(chunk))
        self.memory_limit_mb = memory_limit_mb
        self.local = NgspiceCircuit(network, **self.settings)  # validates the network (and ngspice) here first
        self.network = network
        self.version = 0
        self.recycled = 0
        self.ray = connect(address, num_cpus=None if address not in (None, "", "local", "ray") else self.workers)
        self._actor_class = self.ray.remote(num_cpus=1, max_restarts=0)(_NgspiceActor)
        self._actors: list = []
        self._network_ref = None

    def load(self, network) -> None:
        self.network = network
        self.local.load(network)
        self.version += 1
        self._network_ref = None

    def _ensure_actors(self) -> list:
        while len(self._actors) < self.workers:
            self._actors.append(self._actor_class.remote(self.settings))
        if self._network_ref is None:
            self._network_ref = self.ray.put(self.network)
        return self._actors

    def actor_pids(self) -> list:
        return self.ray.get([a.pid.remote() for a in self._ensure_actors()])

    LOST = "Ray ngspice actors died twice"

    def _run_chunks(self, todo, size, x, y, beta, results) -> None:
        from ray.exceptions import RayActorError, RayTaskError

        actors = self._ensure_actors()
        refs = {s: actors[i % len(actors)].settle.remote(self.version, self._network_ref, x[s:s + size],
                                                         None if y is None else y[s:s + size], beta, s,
                                                         self.deadline)
                for i, s in enumerate(todo)}
        for s, ref in refs.items():
            try:
                results[s] = self.ray.get(ref)
            except RayTaskError as exc:  # ngspice failed on a sample: the same error as a local run
                if isinstance(getattr(exc, "cause", None), SpiceError):
                    raise exc.cause from None
                raise
            except RayActorError:  # the actor's process died: replace the dead ones, retry its chunks
                pass
        self._replace_dead()

    def _replace_dead(self) -> None:
        alive = []
        for a in self._actors:
            try:
                self.ray.get(a.pid.remote(), timeout=30)
                alive.append(a)
            except Exception:
                pass
        self._actors = alive

    def close(self) -> None:
        """Stops the actors; the pool cannot be used afterwards."""
        self._shutdown()
        self.closed = True

    def _shutdown(self) -> None:
        """Stops the actors; the next batch starts fresh ones."""
        for a in self._actors:
            try:
                self.ray.kill(a)
            except Exception:
                pass
        self._actors = []

