"""The on-chip learning path: synapses that learn by Lava's learning engines with a Loihi 2 three-factor rule.
``map.py`` turns rates and conductances into rule strings and codes, ``plastic.py`` runs LearningDense synapses
one sample per run, ``network.py`` the float and integer on-chip training. It uses the float path's processes."""
