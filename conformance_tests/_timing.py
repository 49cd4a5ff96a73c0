"""Timing facts of a stream of messages: rate, clock skew, duplicates, gaps (pure)."""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from ._check import MessageResult

__all__ = ["GAP_FACTOR", "Duplicate", "Gap", "Timing", "timing_facts"]

GAP_FACTOR = 3.0
"""An interval longer than this many times a device's median interval is a gap."""


@dataclass(slots=True, frozen=True)
class Duplicate:
    """A message that repeats an earlier one: same device and timestamp, or same bytes."""

    source: str
    first: str
    why: str


@dataclass(slots=True, frozen=True)
class Gap:
    """A silence of one device longer than `GAP_FACTOR` times its median interval."""

    device: str
    after: datetime
    before: datetime
    seconds: float
    median_s: float


@dataclass(slots=True, frozen=True)
class Timing:
    """What the stream's timing says about the sensor; `None` where it cannot be known
    (no arrival times for files; no payload timestamps)."""

    messages: int
    seconds: float | None
    rate_per_s: float | None
    skew_median_s: float | None
    skew_max_s: float | None
    duplicates: tuple[Duplicate, ...]
    gaps: tuple[Gap, ...]


def timing_facts(results: Sequence[MessageResult], seconds: float | None = None) -> Timing:
    """Rate over `seconds` of listening; skew is arrival minus the payload's timestamp
    (positive: the sensor's clock is behind or the network is slow)."""
    skews = [
        (r.received_at - r.observed_at).total_seconds()
        for r in results
        if r.received_at is not None and r.observed_at is not None
    ]
    rate = len(results) / seconds if seconds else None
    return Timing(
        messages=len(results),
        seconds=seconds,
        rate_per_s=rate,
        skew_median_s=median(skews) if skews else None,
        skew_max_s=max(skews, key=abs) if skews else None,
        duplicates=tuple(_duplicates(results)),
        gaps=tuple(_gaps(results)),
    )


def _duplicates(results: Sequence[MessageResult]) -> list[Duplicate]:
    found: list[Duplicate] = []
    by_stamp: dict[tuple[str, datetime], str] = {}
    by_bytes: dict[str, str] = {}
    for result in results:
        if result.payload is not None:
            digest = hashlib.sha256(f"{result.topic}\0".encode() + result.payload).hexdigest()
            first = by_bytes.setdefault(digest, result.source)
            if first != result.source:
                found.append(Duplicate(result.source, first, "identical payload"))
                continue
        if result.device is not None and result.observed_at is not None:
            key = (result.device, result.observed_at)
            first = by_stamp.setdefault(key, result.source)
            if first != result.source:
                found.append(Duplicate(result.source, first, "same device and timestamp"))
    return found


def _gaps(results: Sequence[MessageResult]) -> list[Gap]:
    times: dict[str, list[datetime]] = defaultdict(list)
    for result in results:
        moment = result.observed_at or result.received_at
        if result.device is not None and moment is not None:
            times[result.device].append(moment)
    found: list[Gap] = []
    for device, seen in times.items():
        moments = sorted(set(seen))
        if len(moments) < 3:
            continue
        pairs = list(itertools.pairwise(moments))
        intervals = [(b - a).total_seconds() for a, b in pairs]
        typical = median(intervals)
        if typical <= 0:
            continue
        found.extend(
            Gap(device, after, before, interval, typical)
            for (after, before), interval in zip(pairs, intervals, strict=True)
            if interval > GAP_FACTOR * typical
        )
    return found
