"""The network on Lava, one subpackage per execution path (lava-nc's layout: each process a folder with
``process.py`` and ``models.py``):

- ``simulation/``: floating-point ProcessModels on Lava's CPU simulator (backend ``lava``);
- ``onchip/``: learning on Lava's learning engines with Loihi 2 rules (``lava-onchip``, ``lava-onchip-int``);
- ``loihi/``: integer microcode neurons on Lava's bit-accurate synapses, the bit-exact emulator, the error
  bound and the energy estimate (``loihi``).

``session.py`` runs any of them in a child process with a deadline on every command. Importing this package
does not import Lava; ``LavaSession`` starts it in its own interpreter.
"""
from .session import LavaError, LavaSession

__all__ = ["LavaError", "LavaSession"]
