"""The pure parts of history: the temporal query's parameters (ETSI GS CIM 009 clause
5.2.21, 4.11), the instances a change records (clause 4.5.7) and the Temporal and Simplified
Temporal Representations (clauses 4.5.7, 4.5.9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from context_broker._attributes import RenderOptions
from context_broker._entities import build_document, parse_fragment, update_attributes
from context_broker._errors import BadRequestData
from context_broker._jsonld import core_term_map
from context_broker._subscriptions._changes import EntityChange
from context_broker._temporal import parse_temporal_query
from context_broker._temporal._aggregation import (
    Aggregation,
    aggregated_attribute,
    parse_aggregation,
    parse_duration,
)
from context_broker._temporal._records import changed_instances
from context_broker._temporal._representation import temporal_entity
from context_broker._temporal._windows import Bound, Walk, Window

TERMS = core_term_map()
T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def test_timerel_translates_to_the_relation_on_the_time_property() -> None:
    """Clause 4.11: before <, after >, between from timeAt included to endTimeAt excluded;
    createdAt and modifiedAt are both the time an instance was written."""
    before = parse_temporal_query("before", "2026-03-01T10:00:00Z", None, None, None)
    assert before.time_filter() == {"t": {"$lt": T0}}
    after = parse_temporal_query("after", "2026-03-01T10:00:00Z", None, "modifiedAt", None)
    assert after.time_filter() == {"at": {"$gt": T0}}
    between = parse_temporal_query(
        "between", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00+00:00", "createdAt", "5"
    )
    assert between.time_filter() == {"at": {"$gte": T0, "$lt": T1}}
    assert between.last_n == 5
    assert parse_temporal_query(None, None, None, None, None).time_filter() == {}


@pytest.mark.parametrize(
    ("timerel", "time_at", "end_time_at", "timeproperty", "last_n", "named"),
    [
        ("between", "2026-03-01T10:00:00Z", None, None, None, "endTimeAt"),
        ("before", None, None, None, None, "timeAt"),
        (None, "2026-03-01T10:00:00Z", None, None, None, "timerel"),
        ("after", "2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z", None, None, "endTimeAt"),
        ("during", "2026-03-01T10:00:00Z", None, None, None, "timerel"),
        ("between", "2026-03-01T11:00:00Z", "2026-03-01T10:00:00Z", None, None, "endTimeAt"),
        ("before", "noon", None, None, None, "timeAt"),
        (None, None, None, "deletedAt", None, "timeproperty"),
        (None, None, None, None, "0", "lastN"),
        (None, None, None, None, "-3", "lastN"),
        (None, None, None, None, "²", "lastN"),
    ],
)
def test_a_wrong_temporal_query_names_its_parameter(
    timerel: str | None,
    time_at: str | None,
    end_time_at: str | None,
    timeproperty: str | None,
    last_n: str | None,
    named: str,
) -> None:
    """Clause 5.2.21: timeAt with timerel, endTimeAt with between only; 400 otherwise."""
    with pytest.raises(BadRequestData) as raised:
        parse_temporal_query(timerel, time_at, end_time_at, timeproperty, last_n)
    assert named in str(raised.value.detail)


def _record(value: int, at: datetime, attr: str = "urn:no2") -> dict[str, Any]:
    instance = {"type": "Property", "value": value, "createdAt": at, "modifiedAt": at}
    return {"_id": f"urn:i:{value}", "attr": attr, "instance": instance, "at": at}


def test_the_servers_cap_cuts_and_says_the_range_it_kept() -> None:
    """Clause 6.3.20: a cut answer's Content-Range is the times held and the size asked."""
    records = [_record(n, T0 + timedelta(minutes=n)) for n in range(4)]
    everything = parse_temporal_query(None, None, None, "modifiedAt", None)
    assert everything.read_limit(3) == 4
    kept, cut = everything.kept(records, 3)
    assert [r["instance"]["value"] for r in kept] == [0, 1, 2] and cut
    assert everything.content_range([kept]) == (
        "date-time 2026-03-01T10:00:00.000Z-2026-03-01T10:02:00.000Z/*"
    )
    latest = parse_temporal_query(None, None, None, "modifiedAt", "10")
    newest_first = records[::-1]
    kept, cut = latest.kept(newest_first, 3)
    assert [r["instance"]["value"] for r in kept] == [1, 2, 3] and cut
    assert latest.content_range([kept]).endswith("10:01:00.000Z-2026-03-01T10:03:00.000Z/10")
    two = parse_temporal_query(None, None, None, None, "2")
    kept, cut = two.kept(newest_first[:3], 3)
    assert [r["instance"]["value"] for r in kept] == [2, 3] and not cut


def test_a_change_records_only_the_instances_it_wrote() -> None:
    """Clause 4.5.7: a new instance for each attribute the write created or changed, with
    its own instance id; an attribute left alone is not recorded again."""
    payload = {
        "id": "urn:ngsi-ld:Sensor:s1",
        "type": "Sensor",
        "no2": {"type": "Property", "value": 1, "observedAt": "2026-03-01T10:00:00Z"},
        "name": {"type": "Property", "value": "Duomo"},
    }
    ids = (f"urn:ngsi-ld:attribute:instance:{n}" for n in count())
    created = build_document(payload, TERMS, T0)
    records = changed_instances(
        EntityChange(None, "urn:ngsi-ld:Sensor:s1", None, created), ids.__next__
    )
    assert sorted(r["attr"] for r in records) == [TERMS.expand("name"), TERMS.expand("no2")]
    after = {**created, "attrs": dict(created["attrs"])}
    fragment = parse_fragment({"no2": {"type": "Property", "value": 2}}, TERMS, T1)
    update_attributes(after, fragment, T1)
    updated = changed_instances(
        EntityChange(None, "urn:ngsi-ld:Sensor:s1", created, after), ids.__next__
    )
    assert [(r["attr"], r["instance"]["value"], r["at"]) for r in updated] == [
        (TERMS.expand("no2"), 2, T1)
    ]
    assert updated[0]["instance"]["createdAt"] == T1
    assert updated[0]["_id"] == "urn:ngsi-ld:attribute:instance:2"
    assert changed_instances(EntityChange(None, "urn:ngsi-ld:Sensor:s1", after, None)) == []


def test_the_temporal_representation_lists_instances_with_their_ids() -> None:
    """Clauses 4.5.7 and 4.5.9: arrays of instances with instanceId; or value/time pairs."""
    records = [_record(1, T0), _record(2, T1)]
    body = temporal_entity("urn:e", ["urn:T"], records, TERMS, RenderOptions())
    assert body["id"] == "urn:e"
    assert body["urn:no2"] == [
        {"type": "Property", "value": 1, "instanceId": "urn:i:1"},
        {"type": "Property", "value": 2, "instanceId": "urn:i:2"},
    ]
    simplified = temporal_entity(
        "urn:e", ["urn:T"], records, TERMS, RenderOptions(), temporal_values=True
    )
    assert simplified["urn:no2"] == {
        "type": "Property",
        "values": [[1, "2026-03-01T10:00:00.000Z"], [2, "2026-03-01T11:00:00.000Z"]],
    }


def test_aggregation_parameters_are_checked_and_durations_read() -> None:
    """aggrMethods from the spec's list, aggrPeriodDuration an ISO 8601 duration (weeks to
    seconds; years and months have no fixed length), only with aggregatedValues."""
    aggregation = parse_aggregation(True, "avg, max,avg", "P1DT2H30M")
    assert aggregation is not None
    assert aggregation.methods == ("avg", "max")
    assert aggregation.period == timedelta(days=1, hours=2, minutes=30)
    assert parse_duration("PT0S") == timedelta(0)
    assert parse_duration("P2W") == timedelta(weeks=2)
    assert parse_duration("PT1.5S") == timedelta(seconds=1.5)
    assert parse_aggregation(False, None, None) is None
    for methods, period in (("median", None), (None, None), ("avg", "PT"), ("avg", "P1M")):
        with pytest.raises(BadRequestData):
            parse_aggregation(True, methods, period)
    with pytest.raises(BadRequestData):
        parse_aggregation(False, "avg", None)


def test_periods_start_at_timeAt_and_have_the_duration() -> None:
    """Clause 4.5.19: each aggregated value with the start and end of its period."""
    query = parse_temporal_query("after", "2026-03-01T10:00:00Z", None, None, None)
    aggregation = Aggregation(("totalCount", "distinctCount"), timedelta(hours=1))
    start = T0
    groups = [
        {"_id": 0.0, "kind": "Property", "totalCount": 3, "distinct": [1, 2], "last": T0},
        {"_id": 2.0, "kind": "Property", "totalCount": 1, "distinct": [5], "last": T1},
    ]
    out = aggregated_attribute(groups, aggregation, start, query)
    assert out == {
        "type": "Property",
        "totalCount": [
            [3, "2026-03-01T10:00:00.000Z", "2026-03-01T11:00:00.000Z"],
            [1, "2026-03-01T12:00:00.000Z", "2026-03-01T13:00:00.000Z"],
        ],
        "distinctCount": [
            [2, "2026-03-01T10:00:00.000Z", "2026-03-01T11:00:00.000Z"],
            [1, "2026-03-01T12:00:00.000Z", "2026-03-01T13:00:00.000Z"],
        ],
    }


def test_a_walk_reads_windows_sized_from_what_the_last_one_held() -> None:
    """A long history is read in time windows: from the end read first, a minute open
    outwards, four times longer after an empty window, else long enough for what is still
    wanted at the density seen, until the other end of the range asked."""
    minute = timedelta(minutes=1)
    newest = Walk(Window(None, None), T1, newest_first=True)
    assert newest.next(0, 100) == Window(Bound(T1 - minute, True), None)
    assert newest.next(0, 100) == Window(Bound(T1 - 5 * minute, True), Bound(T1 - minute, False))
    # 10 held in 4 minutes, 90 more wanted: about 54 minutes next.
    third = newest.next(10, 90)
    assert third is not None and third.high == Bound(T1 - 5 * minute, False)
    assert third.low == Bound(T1 - 5 * minute - 4 * minute * 13.5, True)
    asked = Window(Bound(T0, True), Bound(T1, False))
    oldest = Walk(asked, T1, newest_first=False)
    assert oldest.next(0, 5) == Window(Bound(T0, True), Bound(T0 + minute, False))
    assert oldest.next(0, 5) == Window(Bound(T0 + minute, True), Bound(T0 + 5 * minute, False))
    last = oldest.next(1, 20)  # 4 minutes x 30: past the end asked, so the last window
    assert last == Window(Bound(T0 + 5 * minute, True), Bound(T1, False))
    assert oldest.next(0, 20) is None
    assert last.filter("t") == {"t": {"$gte": T0 + 5 * minute, "$lt": T1}}
    unbounded = Walk(Window(None, None), T0, newest_first=False)
    assert unbounded.next(0, 1) == Window(None, Bound(T0 + minute, False))
    walked = [unbounded.next(0, 1) for _ in range(30)]
    ends = [window for window in walked if window is not None]
    assert len(ends) < 30 and ends[-1].high is None  # ends open, two centuries on
