"""The same network as SPICE text (ngspice), running ngspice and reading its results.

``to_netlist`` writes any network from ``eqprop.circuits`` as a netlist a user can run by hand
(``ngspice -b net.cir``); ``NgspiceCircuit`` runs batches through ngspice's shared library in this
process and ``SpicePool`` over worker processes; ``batch.run_file`` runs the ngspice program;
``transient`` measures settling time and energy.
"""
from .batch import parse_printout, run_file
from .ngspice import NgspiceCircuit, SpiceError, SpiceUnavailable, ngspice_version
from .options import SpiceOptions
from .pool import SpicePool
from .writer import NUDGE_FORMS, Drive, Netlist, Transient, target_pairs, to_netlist

__all__ = ["parse_printout", "run_file", "NgspiceCircuit", "SpiceError", "SpiceUnavailable", "ngspice_version",
           "SpiceOptions", "SpicePool", "NUDGE_FORMS", "Drive", "Netlist", "Transient", "target_pairs", "to_netlist"]
