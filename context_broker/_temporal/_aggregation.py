"""Aggregated Temporal Representation (clause 4.5.19; parameters of clause 6.3.x:
`options=aggregatedValues`, `aggrMethods`, `aggrPeriodDuration`): per attribute and method,
one `[value, start, end]` per period, computed by the store from the selected instances.

Periods start at timeAt (timerel after or between) or at the earliest instance selected,
and are aggrPeriodDuration long (`PT0S`, the default: one period over the whole range)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from context_broker._errors import BadRequestData
from context_broker._temporal._query import TemporalQuery
from context_broker._time import format_datetime

Document = dict[str, Any]
METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
# The value of an instance, whatever its type holds it in.
_VALUE: Document = {"$ifNull": ["$instance.value", {"$ifNull": ["$instance.object", None]}]}
_NUMBER: Document = {"$cond": [{"$isNumber": _VALUE}, _VALUE, None]}


@dataclass(slots=True, frozen=True)
class Aggregation:
    methods: tuple[str, ...]
    period: timedelta  # zero: one period over the whole range


def parse_aggregation(
    aggregated: bool, methods: str | None, period: str | None
) -> Aggregation | None:
    """The aggregation asked for, None without `options=aggregatedValues`; 400 naming the
    parameter for a method not in the spec's list or a duration that is not ISO 8601."""
    if not aggregated:
        if methods is not None or period is not None:
            raise BadRequestData("aggrMethods and aggrPeriodDuration need options=aggregatedValues")
        return None
    if methods is None:
        raise BadRequestData("options=aggregatedValues needs aggrMethods")
    names = tuple(dict.fromkeys(name.strip() for name in methods.split(",") if name.strip()))
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise BadRequestData(f"aggrMethods must list some of {', '.join(METHODS)}; got {methods!r}")
    return Aggregation(names, parse_duration(period) if period is not None else timedelta(0))


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds (`PT1H`, `P1D`)."""
    if text.startswith("P") and any(unit in text.split("T", 1)[0] for unit in "YM"):
        raise BadRequestData(
            "aggrPeriodDuration in years or months is not supported (their length varies); "
            f"use weeks, days, hours, minutes or seconds; got {text!r}"
        )
    found = _DURATION.fullmatch(text)
    if found is None or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration must be an ISO 8601 duration; got {text!r}")
    parts = {name: float(value) for name, value in found.groupdict().items() if value}
    return timedelta(**parts)


def pipeline(
    match: Document, query: TemporalQuery, aggregation: Aggregation, start: datetime, limit: int
) -> list[Document]:
    """The store's aggregation of one attribute's selected instances (`match`), one group
    per period from `start`, periods in time order (the latest first with lastN)."""
    field = "$" + query.time_field
    period_ms = aggregation.period.total_seconds() * 1000
    bucket: Any = (
        {"$floor": {"$divide": [{"$subtract": [field, start]}, period_ms]}} if period_ms else 0
    )
    group: Document = {
        "_id": bucket,
        "kind": {"$last": "$instance.type"},
        "first": {"$min": field},
        "last": {"$max": field},
        "totalCount": {"$sum": 1},
    }
    wanted = set(aggregation.methods)
    if "distinctCount" in wanted:
        group["distinct"] = {"$addToSet": _VALUE}
    if "sum" in wanted:
        group["sum"] = {"$sum": _NUMBER}
    if "avg" in wanted:
        group["avg"] = {"$avg": _NUMBER}
    if "min" in wanted:
        group["min"] = {"$min": _VALUE}
    if "max" in wanted:
        group["max"] = {"$max": _VALUE}
    if "stddev" in wanted:
        group["stddev"] = {"$stdDevPop": _NUMBER}
    if "sumsq" in wanted:
        group["sumsq"] = {"$sum": {"$multiply": [_NUMBER, _NUMBER]}}
    direction = -1 if query.last_n is not None else 1
    return [
        {"$match": match},
        {"$group": group},
        {"$sort": {"_id": direction}},
        {"$limit": limit},
    ]


def aggregated_attribute(
    groups: list[Document], aggregation: Aggregation, start: datetime, query: TemporalQuery
) -> Document:
    """One attribute's aggregated representation from its groups (in time order): per
    method, `[value, start, end]` of each period."""
    out: Document = {"type": groups[-1]["kind"]}
    for method in aggregation.methods:
        out[method] = [
            [_value(group, method), *_bounds(group, aggregation, start, query)] for group in groups
        ]
    return out


def _value(group: Document, method: str) -> Any:
    if method == "distinctCount":
        return len(group["distinct"])
    return group[method]


def _bounds(
    group: Document, aggregation: Aggregation, start: datetime, query: TemporalQuery
) -> list[str]:
    if not aggregation.period:
        end = query.end_time_at if query.timerel == "between" else None
        if query.timerel == "before":
            end = query.time_at
        return [format_datetime(start), format_datetime(end or group["last"])]
    begins = start + aggregation.period * int(group["_id"])
    return [format_datetime(begins), format_datetime(begins + aggregation.period)]
