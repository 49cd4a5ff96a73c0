"""The temporal query of a request (clause 5.2.21 TemporalQuery, 4.11 the temporal query
language): timerel, timeAt, endTimeAt, timeproperty and lastN, checked together."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from context_broker._errors import BadRequestData
from context_broker._temporal._windows import Bound, Window
from context_broker._time import format_datetime, parse_datetime

Document = dict[str, Any]
TimeRel = Literal["before", "after", "between"]
TIME_RELATIONS: tuple[TimeRel, ...] = ("before", "after", "between")
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt")
RECORDED_AT = "at"
"""The recorded instance's member holding when it was written: its createdAt and modifiedAt
(an instance, once recorded, is never modified)."""
OBSERVED = "t"
"""The recorded instance's member holding its observedAt, or when it was written if it has
none: instances without observedAt take their place in time by their writing."""
_DIGITS = re.compile("[0-9]{1,9}")
_FIELD_OF = {"observedAt": OBSERVED, "createdAt": RECORDED_AT, "modifiedAt": RECORDED_AT}


@dataclass(slots=True, frozen=True)
class TemporalQuery:
    """Which instances of each attribute an answer holds: those whose time property is in
    the relation to timeAt (and endTimeAt), all of them without timerel; with lastN, only
    the N most recent of them."""

    timerel: TimeRel | None = None
    time_at: datetime | None = None
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None

    @property
    def time_field(self) -> str:
        """The recorded member the time property is read from."""
        return _FIELD_OF[self.timeproperty]

    def window(self) -> Window:
        """The times the relation selects (clause 4.11: before is strictly before timeAt,
        after strictly after, between from timeAt included to endTimeAt excluded); every
        time without timerel."""
        if self.timerel == "before" and self.time_at is not None:
            return Window(None, Bound(self.time_at, False))
        if self.timerel == "after" and self.time_at is not None:
            return Window(Bound(self.time_at, False), None)
        if self.timerel == "between" and self.time_at and self.end_time_at:
            return Window(Bound(self.time_at, True), Bound(self.end_time_at, False))
        return Window(None, None)

    def time_filter(self) -> dict[str, Any]:
        """The store filter of the relation on the time property; empty without timerel."""
        return self.window().filter(self.time_field)

    def read_limit(self, cap: int) -> int:
        """How many instances of an attribute to read: one more than an answer holds (at
        most lastN and at most the server's `cap`), to tell whether the cap cut them."""
        return (min(self.last_n, cap) if self.last_n is not None else cap) + 1

    def kept(self, found: list[Document], cap: int) -> tuple[list[Document], bool]:
        """The instances an answer holds of those read (earliest first, or latest first
        with lastN), in time order, and whether the server's cap cut them (clause 6.3.20)."""
        held = self.read_limit(cap) - 1
        cut = len(found) > held and (self.last_n is None or self.last_n > cap)
        kept = found[:held]
        return (kept[::-1] if self.last_n is not None else kept), cut

    def content_range(self, cut: list[list[Document]]) -> str:
        """The Content-Range of an answer whose attributes in `cut` the cap cut: the times
        up to which every attribute is whole (from the earliest, or back from the latest
        with lastN), and the size asked (lastN, or `*`)."""
        firsts = [self._time(instances[0]) for instances in cut]
        lasts = [self._time(instances[-1]) for instances in cut]
        if self.last_n is not None:
            start, end = max(firsts), self.end_time_at or max(lasts)
        else:
            start, end = self.time_at or min(firsts), min(lasts)
        size = str(self.last_n) if self.last_n is not None else "*"
        return f"date-time {format_datetime(start)}-{format_datetime(end)}/{size}"

    def _time(self, record: Document) -> datetime:
        found: datetime = record.get(self.time_field) or record[RECORDED_AT]
        return found


def parse_temporal_query(
    timerel: str | None,
    time_at: str | None,
    end_time_at: str | None,
    timeproperty: str | None,
    last_n: str | None,
) -> TemporalQuery:
    """The TemporalQuery of the request's parameters, or 400 BadRequestData naming the
    parameter that is wrong or missing (clause 5.2.21: timeAt goes with timerel, endTimeAt
    with timerel=between and only with it)."""
    if timerel is not None and timerel not in TIME_RELATIONS:
        raise BadRequestData(f"timerel must be before, after or between; got {timerel!r}")
    if timerel is None and (time_at is not None or end_time_at is not None):
        raise BadRequestData("timeAt and endTimeAt need timerel (before, after or between)")
    if timerel is not None and time_at is None:
        raise BadRequestData(f"timerel={timerel} needs timeAt")
    if timerel == "between" and end_time_at is None:
        raise BadRequestData("timerel=between needs endTimeAt")
    if timerel != "between" and end_time_at is not None:
        raise BadRequestData("endTimeAt applies only with timerel=between")
    start = parse_datetime(time_at, "timeAt") if time_at is not None else None
    end = parse_datetime(end_time_at, "endTimeAt") if end_time_at is not None else None
    if start is not None and end is not None and end <= start:
        raise BadRequestData("endTimeAt must be later than timeAt")
    prop = timeproperty if timeproperty is not None else "observedAt"
    if prop not in TIME_PROPERTIES:
        raise BadRequestData(
            f"timeproperty must be observedAt, createdAt or modifiedAt; got {timeproperty!r}"
        )
    return TemporalQuery(timerel, start, end, prop, _last_n(last_n))


def _last_n(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw) or int(raw) <= 0:
        raise BadRequestData(f"lastN must be a positive integer; got {raw!r}")
    return int(raw)
