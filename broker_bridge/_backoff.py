"""Exponential backoff with jitter, for loops that retry a store or a broker."""

from __future__ import annotations

import asyncio
import contextlib
import random

__all__ = ["Backoff", "sleep_or_stop"]

_JITTER = random.Random()
"""Its own generator: drawing jitter leaves the global one alone."""


class Backoff:
    """Delays that double from `base_s` to `cap_s`, each drawn from its upper half."""

    def __init__(self, base_s: float = 0.2, cap_s: float = 10.0) -> None:
        self._base_s = base_s
        self._cap_s = cap_s
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap_s, self._base_s * 2 ** min(self._failures, 16))
        self._failures += 1
        return _JITTER.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._failures = 0


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less if `stop` is set meanwhile; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
