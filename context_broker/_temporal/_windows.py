"""Reads of one attribute's history in time windows, so that a read brings about the
instances it answers and not the attribute's whole history.

The embedded store reads every instance a filter selects before it sorts and limits (see
`_query/_store_traits.py`), so "the last 100 of 100,000" would read all 100,000. A walk
starts from the end it reads first (the latest time asked, or now; the earliest time asked,
or when the attribute was first recorded) with a one-minute window, open outwards so that
nothing beyond the anchor is missed, and sizes each next window from what the last held:
four times as long after an empty one, else long enough for what is still wanted at the
density seen (at least twice as long). It ends at the other end of the range asked, or,
with that end open, once a window spans more than two centuries, with an open window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Document = dict[str, Any]
FIRST_LENGTH = timedelta(minutes=1)
LONGEST = timedelta(days=200 * 365)
_MARGIN = 1.5


@dataclass(slots=True, frozen=True)
class Bound:
    at: datetime
    inclusive: bool


@dataclass(slots=True, frozen=True)
class Window:
    low: Bound | None
    high: Bound | None

    def filter(self, field: str) -> Document:
        """The store filter of the window on `field` (empty: every time)."""
        condition: Document = {}
        if self.low is not None:
            condition["$gte" if self.low.inclusive else "$gt"] = self.low.at
        if self.high is not None:
            condition["$lte" if self.high.inclusive else "$lt"] = self.high.at
        return {field: condition} if condition else {}


class Walk:
    """The windows of one read, in reading order: the latest first when `newest_first`."""

    def __init__(
        self, asked: Window, anchor: datetime, newest_first: bool, length: timedelta = FIRST_LENGTH
    ) -> None:
        self.asked = asked
        self.newest_first = newest_first
        self.length = length
        self.edge: Bound | None = None  # where the next window starts
        self.anchor = anchor
        self.started = False
        self.done = False

    def next(self, held: int, wanted: int) -> Window | None:
        """The next window, given how many instances the last one held and how many are
        still wanted; None when the range asked is covered."""
        if self.done:
            return None
        if self.started:
            self._grow(held, wanted)
        self.started = True
        return self._backwards() if self.newest_first else self._forwards()

    def _grow(self, held: int, wanted: int) -> None:
        if held == 0:
            self.length *= 4
        else:
            self.length = max(self.length * 2, self.length * (_MARGIN * wanted / held))

    def _backwards(self) -> Window:
        asked = self.asked
        if self.edge is None:
            top = asked.high
            reference = asked.high.at if asked.high is not None else self.anchor
        else:
            top, reference = self.edge, self.edge.at
        start = _moved(reference, -self.length)
        if start is None or (asked.low is not None and start <= asked.low.at):
            self.done = True
            return Window(asked.low, top)
        self.edge = Bound(start, False)
        return Window(Bound(start, True), top)

    def _forwards(self) -> Window:
        asked = self.asked
        if self.edge is None:
            bottom = asked.low
            reference = asked.low.at if asked.low is not None else self.anchor
        else:
            bottom, reference = self.edge, self.edge.at
        end = _moved(reference, self.length)
        if end is None or (asked.high is not None and end >= asked.high.at):
            self.done = True
            return Window(bottom, asked.high)
        self.edge = Bound(end, True)
        return Window(bottom, Bound(end, False))


def _moved(reference: datetime, length: timedelta) -> datetime | None:
    """`reference` moved by `length`; None past two centuries or the calendar's end."""
    if abs(length) > LONGEST:
        return None
    try:
        return reference + length
    except OverflowError:
        return None
