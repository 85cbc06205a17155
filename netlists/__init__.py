"""The same network as SPICE text (ngspice), running ngspice and reading its results."""
