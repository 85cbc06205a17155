"""The same network as Lava processes (Loihi-style, on Lava's CPU simulator ``Loihi2SimCfg``).

``process.py`` holds the Processes (interfaces), ``models.py`` their floating-point ProcessModels,
``network.py`` wires a LayeredNetwork into them and settles phases; ``plastic_*.py`` are the on-chip
learning path (LearningDense synapses with a Loihi 2 rule, one sample per run); ``session.py`` runs all of it
in a child process with a deadline on every command. Importing this package does not import Lava;
``LavaSession`` starts it in its own interpreter.
"""
from .session import LavaError, LavaSession

__all__ = ["LavaError", "LavaSession"]
