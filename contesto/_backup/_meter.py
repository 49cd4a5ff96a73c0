"""How a backup or restore tells its progress: a port the command line fills with a bar."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Meter", "SilentMeter"]


class Meter(Protocol):
    """Told the documents a stage will handle, then each batch as it is handled."""

    def begin(self, stage: str, total: int) -> None: ...

    def advance(self, documents: int) -> None: ...


class SilentMeter:
    """A meter that shows nothing (scripts, tests)."""

    def begin(self, stage: str, total: int) -> None:
        pass

    def advance(self, documents: int) -> None:
        pass
