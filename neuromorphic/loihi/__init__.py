"""The Loihi path: integer microcode neurons on Lava's bit-accurate Dense synapses.

``microcode.py`` is the neuron program (integer only, the chip's widths), ``map.py`` maps a LayeredNetwork onto
8-bit mantissas with exponents and neuron constants, ``network.py`` runs it in Lava, ``emulator.py`` is its
batched bit-exact twin on the host, ``bound.py`` the error bound against the exact equilibrium, ``energy.py``
the energy and time estimate. ``proc/`` holds the Lava processes (``neurons``, ``player``)."""
