"""Errors raised for bad networks, bad inputs and solves that do not converge.

They subclass ValueError/RuntimeError so generic handlers still work, and each message names what is
wrong and how to fix it.
"""


class NetworkError(ValueError):
    """The network description is invalid (bad conductance, unknown device or role, floating node...)."""


class InputError(ValueError):
    """Inputs or targets have the wrong shape or hold NaN/inf."""


class ConvergenceError(RuntimeError):
    """The solver stopped before reaching its tolerance; carries the worst sample and its residual."""

    def __init__(self, message, sample=None, residual=None):
        super().__init__(message)
        self.sample = sample
        self.residual = residual
