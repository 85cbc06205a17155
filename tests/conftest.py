"""Shared test fixtures."""

import signal

import pytest


@pytest.fixture
def terminal_ctrl_c():
    """A shell that starts the tests in the background (`make test &`, nohup, some CI runners) hands them SIGINT
    ignored, and Python keeps an inherited ignore, so a test that sends itself SIGINT would see nothing (and a
    long analysis would run to its end). The user's terminal Ctrl-C is what such tests check: Python's own
    handler for the test, the inherited one restored after it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def default_sigint():
    """preexec_fn for a child process that a test interrupts with SIGINT (see terminal_ctrl_c)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
