"""Lava processes of the Loihi path: ``neurons`` (the integer microcode neuron) and ``player`` (the input
sample player), each a ``process.py`` with its ``models.py``."""
