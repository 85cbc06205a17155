"""Simulator settings that decide whether SPICE equilibria are good enough for EqProp.

EqProp reads the difference between the nudged and the free equilibrium, which is of order beta
times the output error: microvolts for a weak nudge. SPICE's defaults (reltol 1e-3, vntol 1 uV)
stop Newton when node voltages change by 0.1%, which swamps that difference. The defaults here are
tight enough that ngspice agrees with the native solver to well under a microvolt (``eqprop gradcheck``
measures the gradient error at these and looser settings).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from eqprop.circuits.errors import NetworkError


@dataclass(frozen=True)
class SpiceOptions:
    """``.options`` of the netlist. Tolerances in SPICE's own units (relative, volts, amperes)."""

    reltol: float = 1e-9  # relative change of a node voltage / branch current at which Newton stops
    vntol: float = 1e-12  # absolute voltage tolerance (V)
    abstol: float = 1e-18  # absolute current tolerance (A): node currents here are nA to uA
    gmin: float = 1e-12  # conductance across every junction (S); the native Shockley model uses the same
    itl1: int = 400  # Newton iterations allowed for an operating point before the convergence aids
    temp: float = 27.0  # device temperature (C); 27 C gives ngspice's thermal voltage of 25.865 mV
    sweep_tol: float = 1e-9  # V: a swept sample is accepted when two solves in a row agree this well

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or (value <= 0 and f.name not in ("temp",)):
                raise NetworkError(f"SpiceOptions.{f.name} must be a positive finite number, got {value!r}")
        if self.reltol >= 1e-2:
            raise NetworkError(f"SpiceOptions.reltol={self.reltol} is too loose for EqProp (use < 1e-2)")

    def card(self) -> str:
        return (f".options reltol={self.reltol:g} vntol={self.vntol:g} abstol={self.abstol:g} "
                f"gmin={self.gmin:g} itl1={self.itl1:d} temp={self.temp:g} tnom={self.temp:g}")
