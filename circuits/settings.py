"""The toolkit's settings from the environment (``EQPROP_KERNELS``, ``EQPROP_THREADS``, ``EQPROP_MALLOC``), read at
every call: a user or a test may set them while the process runs.

``os.environ.get`` encodes the name and, for a name that is not set, raises and catches a KeyError inside, and a
solve asks several times. ``setting`` looks the encoded name up in the dict behind ``os.environ`` (CPython's
``_data``, which every change through ``os.environ`` updates); where that dict is not there it asks ``os.environ``.
"""
from __future__ import annotations

import os

_DATA = getattr(os.environ, "_data", None)
_ENCODE = getattr(os.environ, "encodekey", None)
_DECODE = getattr(os.environ, "decodevalue", None)
_FAST = isinstance(_DATA, dict) and callable(_ENCODE) and callable(_DECODE)
_KEYS: dict = {}


def setting(name: str) -> str:
    """``os.environ.get(name, "")``."""
    if not _FAST:
        return os.environ.get(name, "")
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = _ENCODE(name)
    value = _DATA.get(key)
    return "" if value is None else _DECODE(value)
