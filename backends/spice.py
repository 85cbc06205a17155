"""The ngspice backend: every phase an ngspice operating point, behind the protocol.

The learning layer sees only equilibria; the local statistics are the squared voltage drops across
each conductance, read from ngspice's node voltages exactly as a chip would measure them. Ideal
diodes are written as SPICE's stand-in (``IdealDiode.spice_stand_in``: a 1 S piecewise-linear diode).
"""
from __future__ import annotations

from eqprop.circuits import Equilibrium, LayeredNetwork
from eqprop.netlists import SpiceOptions, SpicePool
from eqprop.netlists.ngspice import DEADLINE_S

from .base import ResistiveBackend


class SpiceBackend(ResistiveBackend):
    """Settles a LayeredNetwork in ngspice (``workers`` processes; tolerances from ``options``).

    ``cluster``: None for the local process pool; 'ray' for a local Ray instance, or a Ray address
    ('auto', 'ray://host:10001') for long-lived ngspice actors on a cluster (``netlists.ray_pool``)."""

    name = "spice"

    def __init__(self, network: LayeredNetwork, options: SpiceOptions | None = None, workers: int | None = None,
                 ideal_diode=None, progress: bool = False, cluster: str | None = None,
                 deadline: float | None = DEADLINE_S):
        self.network = network
        if cluster:
            from eqprop.netlists.ray_pool import RaySpicePool  # imports Ray only when asked for
            self.pool = RaySpicePool(network, workers=workers, options=options, ideal_diode=ideal_diode,
                                     address=cluster, deadline=deadline)
        else:
            self.pool = SpicePool(network, workers=workers, options=options, ideal_diode=ideal_diode,
                                  progress=progress, deadline=deadline)

    @classmethod
    def from_config(cls, network, cfg) -> "SpiceBackend":
        deadline = DEADLINE_S if cfg.deadline is None else cfg.deadline  # every analysis has one
        return cls(network, workers=cfg.workers, cluster=cfg.cluster, deadline=deadline)

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        # ngspice warm-starts every sample from the previous one itself; ``init`` is not needed
        return self.pool.equilibrium(x, y, beta)

    def sync(self) -> None:
        self.network.validate()
        self.pool.load(self.network)

    def close(self) -> None:
        self.pool.close()

    def physical_figures(self, x, capacitance: float = 1e-12) -> dict:
        """Static power, settling time and energy per inference of the first sample (ngspice transient)."""
        from eqprop.netlists import NgspiceCircuit
        from eqprop.netlists.transient import settling

        s = settling(NgspiceCircuit(self.network), x[:1], capacitance)
        return {"static_power_w": s.static_power, "settling_time_s": s.settling_time,
                "energy_per_inference_j": s.energy, "capacitance_f": capacitance}
