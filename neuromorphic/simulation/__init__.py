"""The float simulation path: the network as Lava processes with floating-point ProcessModels on Lava's CPU
simulator (``network.py`` wires a LayeredNetwork into them and settles phases). ``proc/`` holds the processes
(``process.py``) and their models (``models.py``) in Lava's own layout; the on-chip learning path reuses them."""
