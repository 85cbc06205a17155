"""A simulator handle that owns processes: ``with`` closes it, and garbage collection releases it."""
from __future__ import annotations


class Resource:
    """Subclasses implement ``close`` (orderly) and may override ``release`` (at garbage collection, when
    nothing may block; default: ``close``)."""

    def close(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.release()
        except Exception:  # interpreter shutdown: nothing left to clean
            pass
