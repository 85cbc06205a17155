"""Lava processes of the float path, one folder each (``process.py``: the interface, ``models.py``: its
ProcessModels): ``dense`` (batched synapses), ``neurons`` (the EqProp node, its plastic and tagged variants),
``source`` (clamped inputs, samples and values)."""
