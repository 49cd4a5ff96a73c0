"""When a failed notification is tried again: exponential backoff with full jitter."""

from __future__ import annotations

import random

_JITTER = random.Random()
"""Its own generator: drawing jitter leaves the global one alone."""

CAP_S = 300.0
"""The longest wait between two attempts."""


def retry_delay(attempts: int, base_s: float, cap_s: float = CAP_S) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1 for the first): uniform
    in [0, min(cap, base * 2^(attempts-1))], so retries of many notifiers spread out."""
    ceiling = min(cap_s, base_s * 2 ** min(max(attempts - 1, 0), 32))
    return _JITTER.uniform(0.0, ceiling)
