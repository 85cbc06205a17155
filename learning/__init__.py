"""EqProp on any backend: the Backend protocol, phases, local updates, trainer, data and CLI."""
