"""Loihi-style integer EqProp neurons (bit-accurate): ``process.py`` interface, ``models.py`` model."""
