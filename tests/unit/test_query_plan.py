"""The query planner: a planned query, run over entities held in memory, selects, orders
and pages exactly as a brute-force matcher over the same entities does, on every store's
traits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from context_broker._entities import build_document
from context_broker._errors import TooManyResults
from context_broker._jsonld import core_term_map
from context_broker._names import encode_field
from context_broker._plan_executor import QueryPage, execute
from context_broker._query import parse_q
from context_broker._query._geo import GeoQuery, haversine_m
from context_broker._query._pages import Bucket, bounds, page_range
from context_broker._query._plan import EntityQuery, PageCut, SortKey, plan
from context_broker._query._store_traits import EMBEDDED_STORE, MONGODB, StoreTraits

WALKING_STORE = replace(EMBEDDED_STORE, walk_documents=3)
"""The embedded store's traits, with walks read three entities at a time."""

TERMS = core_term_map()
expand = TERMS.expand
N_FIELD = f"attrs.{encode_field(expand('n'))}.value"
LOCATION = expand("location")
WEST, SOUTH = 11.0, 43.7
STEP = 0.002  # grid step of points (an offset keeps them off every box edge)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
Doc = dict[str, Any]


@dataclass(frozen=True)
class Entity:
    """What the brute force sees of an entity."""

    id: str
    type: str
    n: int | None
    s: str | None
    point: tuple[float, float] | None
    created: datetime

    def payload(self) -> Doc:
        body: Doc = {"id": self.id, "type": self.type}
        if self.n is not None:
            body["n"] = {"type": "Property", "value": self.n}
        if self.s is not None:
            body["s"] = {"type": "Property", "value": self.s}
        if self.point is not None:
            point = {"type": "Point", "coordinates": list(self.point)}
            body["location"] = {"type": "GeoProperty", "value": point}
        return body


@st.composite
def entity_sets(draw: st.DrawFn) -> list[Entity]:
    count = draw(st.integers(0, 16))
    created = draw(st.permutations(range(count)))
    entities = []
    for i in range(count):
        kind = draw(st.sampled_from("AB"))
        point = draw(st.none() | st.tuples(st.integers(0, 9), st.integers(0, 9)))
        entities.append(
            Entity(
                id=f"urn:ngsi-ld:{kind}:{i:02d}",
                type=kind,
                n=draw(st.none() | st.integers(0, 5)),
                s=draw(st.none() | st.text("ab", min_size=1, max_size=3)),
                point=None
                if point is None
                else (WEST + (point[0] + 0.3) * STEP, SOUTH + (point[1] + 0.6) * STEP),
                created=EPOCH + timedelta(seconds=created[i]),
            )
        )
    return entities


Test = Callable[[Entity], bool]


def _terms() -> st.SearchStrategy[tuple[str, Test]]:
    number = st.integers(0, 5)
    text = st.text("ab", min_size=1, max_size=2)
    regex = st.sampled_from(["^a", "b$", "ab", "a"])
    return st.one_of(
        number.map(lambda k: (f"n>{k}", lambda e: e.n is not None and e.n > k)),
        number.map(lambda k: (f"n<={k}", lambda e: e.n is not None and e.n <= k)),
        number.map(lambda k: (f"n=={k}", lambda e: e.n == k)),
        number.map(lambda k: (f"n!={k}", lambda e: e.n is not None and e.n != k)),
        number.flatmap(
            lambda k: st.integers(k, 5).map(
                lambda m: (f"n=={k}..{m}", lambda e: e.n is not None and k <= e.n <= m)
            )
        ),
        text.map(lambda t: (f's=="{t}"', lambda e: e.s == t)),
        regex.map(lambda r: (f"s~={r}", lambda e: e.s is not None and bool(re.search(r, e.s)))),
        regex.map(lambda r: (f"s!~={r}", lambda e: e.s is not None and not re.search(r, e.s))),
        st.just(("n", lambda e: e.n is not None)),
        st.just(("!s", lambda e: e.s is None)),
    )


def _combined(
    parts: st.SearchStrategy[tuple[str, Test]],
) -> st.SearchStrategy[tuple[str, Test]]:
    def join(terms: list[tuple[str, Test]], sep: str) -> tuple[str, Test]:
        tests = [test for _, test in terms]
        text = "(" + sep.join(q for q, _ in terms) + ")"
        if sep == ";":
            return text, lambda e: all(test(e) for test in tests)
        return text, lambda e: any(test(e) for test in tests)

    return st.tuples(st.lists(parts, min_size=2, max_size=3), st.sampled_from(";|")).map(
        lambda args: join(*args)
    )


Q = st.recursive(_terms(), _combined, max_leaves=4)

ORDERS: list[tuple[SortKey, ...]] = [
    (),
    (SortKey("_id", descending=True),),
    (SortKey("createdAt"),),
    (SortKey("modifiedAt", descending=True),),
    (SortKey(N_FIELD),),
    (SortKey(N_FIELD, descending=True),),
]
ID_PATTERNS = ["1$", "^urn:ngsi-ld:A:", ":0", "[13]$"]


@dataclass(frozen=True)
class Case:
    query: EntityQuery
    matches: Test
    near: tuple[float, float] | None
    bucket_size: int = 2
    """Entities per id range of a type (a page of a type alone is read from them)."""


@st.composite
def cases(draw: st.DrawFn) -> Case:
    tests: list[Test] = []
    types = draw(st.sampled_from(["", "A", "B", "A,B"]))
    if types:
        names = types.split(",")
        tests.append(lambda e: e.type in names)
    rarely = st.integers(0, 3).map(lambda n: n == 0)  # each further condition, one in four
    ids = tuple(draw(st.lists(st.integers(0, 12), max_size=6, unique=True))) if draw(rarely) else ()
    id_list = tuple(f"urn:ngsi-ld:{kind}:{i:02d}" for i in ids for kind in "AB")
    if ids:
        tests.append(lambda e: e.id in id_list)
    q = draw(st.none() | Q)
    if q is not None:
        tests.append(q[1])
    id_pattern = draw(st.sampled_from(ID_PATTERNS)) if draw(rarely) else None
    if id_pattern is not None:
        tests.append(lambda e: re.search(id_pattern, e.id) is not None)
    attrs = draw(st.sampled_from([("n",), ("s", "location")])) if draw(rarely) else ()
    if attrs:
        tests.append(lambda e: any(getattr(e, _ATTRS[a]) is not None for a in attrs))
    geo, near = draw(_geo_queries(tests))
    query = EntityQuery(
        ids=id_list,
        id_pattern=id_pattern,
        types=tuple((expand(name),) for name in types.split(",")) if types else (),
        attrs=tuple(expand(a) for a in attrs),
        q=None if q is None else parse_q(q[0]),
        geo=geo,
        expand=expand,
        order=draw(st.sampled_from(ORDERS)),
        limit=draw(st.integers(0, 6)),
        offset=draw(st.integers(0, 5)),
        count=draw(st.booleans()),
    )
    bucket_size = draw(st.integers(1, 4))
    return Case(query, lambda e: all(test(e) for test in tests), near, bucket_size)


_ATTRS = {"n": "n", "s": "s", "location": "point"}


@st.composite
def _geo_queries(
    draw: st.DrawFn, tests: list[Test]
) -> tuple[GeoQuery | None, tuple[float, float] | None]:
    kind = draw(st.sampled_from(["none", "near", "near-min", "within"]))
    if kind == "none":
        return None, None
    if kind == "within":
        w, s = draw(st.integers(0, 9)), draw(st.integers(0, 9))
        e, n = draw(st.integers(w + 1, 10)), draw(st.integers(s + 1, 10))
        box = [WEST + w * STEP, SOUTH + s * STEP, WEST + e * STEP, SOUTH + n * STEP]
        ring = [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]
        polygon = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        tests.append(
            lambda ent: (
                ent.point is not None
                and box[0] < ent.point[0] < box[2]
                and box[1] < ent.point[1] < box[3]
            )
        )
        return GeoQuery("within", polygon, LOCATION), None
    centre = (WEST + draw(st.integers(0, 9)) * STEP, SOUTH + draw(st.integers(0, 9)) * STEP)
    metres = float(draw(st.integers(1, 12)) * 100)
    point = {"type": "Point", "coordinates": list(centre)}

    def distance(ent: Entity) -> float:
        assert ent.point is not None
        return haversine_m(centre[0], centre[1], ent.point[0], ent.point[1])

    if kind == "near":
        tests.append(lambda ent: ent.point is not None and distance(ent) <= metres)
        return GeoQuery("near", point, LOCATION, max_distance=metres), centre
    tests.append(lambda ent: ent.point is not None and distance(ent) >= metres)
    return GeoQuery("near", point, LOCATION, min_distance=metres), centre


def brute_force(entities: list[Entity], case: Case) -> tuple[list[str], int]:
    """The matches in the answer's order, and how many there are."""
    found = [e for e in entities if case.matches(e)]
    query = case.query
    if query.geo is not None:
        if case.near is not None:
            lon, lat = case.near

            def distance(e: Entity) -> float:
                assert e.point is not None
                return haversine_m(lon, lat, e.point[0], e.point[1])

            found.sort(key=lambda e: (distance(e), e.id))
        else:
            found.sort(key=lambda e: e.id)
    else:
        keys = list(query.order)
        if not any(key.field == "_id" for key in keys):
            keys.append(SortKey("_id"))
        for key in reversed(keys):
            found.sort(key=_SORT_KEYS[key.field], reverse=key.descending)
    return [e.id for e in found], len(found)


_SORT_KEYS: dict[str, Callable[[Entity], Any]] = {
    "_id": lambda e: e.id,
    "createdAt": lambda e: e.created,
    "modifiedAt": lambda e: e.created,
    N_FIELD: lambda e: (0, 0) if e.n is None else (1, e.n),  # a missing value sorts first
}


class MemoryEntities:
    """One tenant's entities in memory, read as the store adapter reads them, with a small
    MongoDB filter matcher."""

    max_documents = 10_000

    def __init__(self, docs: Iterable[Doc], bucket_size: int = 2) -> None:
        self.docs = list(docs)
        self.lookups: list[Mapping[str, Any]] = []
        self.bucket_size = bucket_size

    async def type_ranges(self, type_iri: str) -> list[Bucket]:
        ids = sorted(doc["_id"] for doc in self.docs if type_iri in doc["type"])
        return bounds(ids, self.bucket_size)

    def check_documents(self, found: int, what: str) -> None:
        if found > self.max_documents:
            raise TooManyResults(what)

    def check_time(self, started: float) -> None:
        return None

    async def range_matches(
        self,
        type_iri: str,
        ids: Mapping[str, str],
        rest: Mapping[str, Any] | None,
        fields: Sequence[str],
    ) -> list[Doc]:
        lookup = {"type": type_iri, "_id": ids}
        self.lookups.append(lookup)
        found = [doc for doc in self.docs if matches(doc, lookup)]
        return [_project(doc, fields) for doc in found if rest is None or matches(doc, rest)]

    async def ensure_value_indexes(self, fields: Sequence[str]) -> None:
        return None

    async def ensure_geo_fields(self, fields: Sequence[str]) -> None:
        return None

    def _union(self, queries: Sequence[Mapping[str, Any]]) -> list[Doc]:
        self.lookups.extend(queries)
        return [doc for doc in self.docs if any(matches(doc, query) for query in queries)]

    async def find(
        self,
        queries: Sequence[Mapping[str, Any]],
        *,
        names: Sequence[str] | None,
        sort: Sequence[tuple[str, int]],
        skip: int,
        limit: int,
        collation: str | None,
    ) -> list[Doc]:
        found = self._union(queries)
        for field, direction in reversed(sort):
            found.sort(key=lambda doc: _sort_value(doc, field, direction), reverse=direction < 0)
        return found[skip : skip + limit]

    async def count_any(
        self, queries: Sequence[Mapping[str, Any]], *, collation: str | None
    ) -> int:
        return len(self._union(queries))

    async def scan(
        self, queries: Sequence[Mapping[str, Any]], fields: Sequence[str], *, limit: int
    ) -> list[Doc]:
        return self._union(queries)[: limit + 1]

    async def geometries(
        self, lookup: Mapping[str, Any], rest: Mapping[str, Any], field: str
    ) -> list[tuple[str, tuple[dict[str, Any], list[str]]]]:
        return [
            (doc["_id"], (doc["attrs"][field]["value"], doc["type"]))
            for doc in self._union([{"$and": [lookup, rest]}])
        ]

    async def exists(self, query: Mapping[str, Any]) -> bool:
        return bool(self._union([query]))

    async def get_many(
        self, ids: Sequence[str], names: Sequence[str] | None = None
    ) -> dict[str, Doc]:
        return {doc["_id"]: doc for doc in self.docs if doc["_id"] in ids}


def _values(value: Any, path: str) -> list[Any]:
    """The values a MongoDB path reaches (arrays walked; an array at the end gives itself
    and its elements)."""
    head, _, rest = path.partition(".")
    if isinstance(value, list):
        return [found for item in value if isinstance(item, dict) for found in _values(item, path)]
    if not isinstance(value, dict) or head not in value:
        return []
    found = value[head]
    if rest:
        return _values(found, rest)
    return [found, *found] if isinstance(found, list) else [found]


def _bracket(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return 2
    if isinstance(value, dict):
        return 3
    if isinstance(value, list):
        return 4
    if isinstance(value, bool):
        return 5
    return 6  # datetimes


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _operator(op: str, argument: Any, values: list[Any], raw: list[Any]) -> bool:
    if op in _COMPARE:
        return any(_bracket(v) == _bracket(argument) and _COMPARE[op](v, argument) for v in values)
    if op == "$eq":
        return argument in values
    if op == "$ne":
        return argument not in values
    if op == "$in":
        return any(v in argument for v in values)
    if op == "$all":
        return all(item in values for item in argument)
    if op == "$exists":
        return bool(raw) is bool(argument)
    if op == "$type":
        kind = {"string": str, "array": list}[argument]
        return any(isinstance(v, kind) for v in values)
    if op == "$not":
        return not _condition(argument, values, raw)
    if op == "$elemMatch":
        return any(
            _condition(argument, [item], [item])
            if all(key.startswith("$") for key in argument)
            else isinstance(item, dict) and matches(item, argument)
            for array in raw
            if isinstance(array, list)
            for item in array
        )
    raise AssertionError(f"operator {op} is not in the fake store")


def _condition(condition: Any, values: list[Any], raw: list[Any]) -> bool:
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        return all(_operator(op, arg, values, raw) for op, arg in condition.items())
    return condition in values


def matches(doc: Doc, query: Mapping[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$and":
            ok = all(matches(doc, sub) for sub in condition)
        elif key == "$or":
            ok = any(matches(doc, sub) for sub in condition)
        else:
            values = _values(doc, key)
            ok = _condition(condition, values, values)
        if not ok:
            return False
    return True


def _project(doc: Doc, fields: Sequence[str]) -> Doc:
    """The document with only its id and the (dotted) fields."""
    projected: Doc = {"_id": doc["_id"]}
    for path in fields:
        source: Any = doc
        target = projected
        *parents, last = path.split(".")
        for name in parents:
            if not isinstance(source, dict) or name not in source:
                break
            source = source[name]
            target = target.setdefault(name, {})
        else:
            if isinstance(source, dict) and last in source:
                target[last] = source[last]
    return projected


def _sort_value(doc: Doc, field: str, direction: int) -> tuple[int, Any]:
    values = _values(doc, field)
    if not values:
        return (0, 0)
    value = values[0]
    if isinstance(value, list):  # arrays sort by their least (ascending) or greatest element
        value = (min if direction > 0 else max)(value)
    return (_bracket(value), value)


def run(
    entities: list[Entity], query: EntityQuery, traits: StoreTraits, bucket_size: int = 2
) -> QueryPage:
    docs = [
        build_document(e.payload(), TERMS, e.created) for e in entities
    ]  # createdAt = modifiedAt
    return asyncio.run(execute(MemoryEntities(docs, bucket_size), plan(query, traits)))


@pytest.mark.parametrize(
    "traits",
    [EMBEDDED_STORE, MONGODB, WALKING_STORE],
    ids=["embedded", "mongodb", "walking"],
)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entities=entity_sets(), case=cases())
def test_a_planned_query_answers_what_brute_force_finds(
    traits: StoreTraits, entities: list[Entity], case: Case
) -> None:
    expected, total = brute_force(entities, case)
    query = case.query
    page = run(entities, query, traits, bucket_size=case.bucket_size)
    assert [doc["_id"] for doc in page.docs] == expected[query.offset : query.offset + query.limit]
    assert page.total == (total if query.count else None)
    if query.limit:
        assert page.more == (total > query.offset + query.limit)


def test_the_plan_names_where_the_page_is_cut() -> None:
    by_type = EntityQuery(types=((expand("A"),),))
    assert plan(by_type, EMBEDDED_STORE).cut is PageCut.ID_RANGES
    assert plan(by_type, EMBEDDED_STORE).ranges_of == expand("A")
    assert plan(by_type, MONGODB).cut is PageCut.STORE
    by_type_and_value = EntityQuery(types=((expand("A"),),), q=parse_q("n>1"), expand=expand)
    assert plan(by_type_and_value, EMBEDDED_STORE).cut is PageCut.STORE
    by_type_newest = EntityQuery(types=((expand("A"),),), order=(SortKey("modifiedAt"),))
    assert plan(by_type_newest, EMBEDDED_STORE).cut is PageCut.STORE
    pattern = EntityQuery(id_pattern="1$")
    assert plan(pattern, EMBEDDED_STORE).cut is PageCut.BROKER
    by_value = EntityQuery(id_pattern="1$", order=(SortKey(N_FIELD),))
    assert plan(by_value, EMBEDDED_STORE).cut is PageCut.STORE_BY_IDS
    near = GeoQuery("near", {"type": "Point", "coordinates": [WEST, SOUTH]}, LOCATION, 100.0)
    assert plan(EntityQuery(geo=near), EMBEDDED_STORE).cut is PageCut.BROKER


def test_one_field_filters_split_a_selection_into_flat_lookups() -> None:
    """The embedded store scans for a top-level `$or`: each alternative is its own lookup,
    its indexed condition first; MongoDB plans the `$or` itself."""
    query = EntityQuery(q=parse_q("n>1"), types=((expand("A"),),), expand=expand)
    embedded = plan(query, EMBEDDED_STORE)
    assert len(embedded.lookups) == 3
    assert all(not key.startswith("$") for lookup in embedded.lookups for key in lookup)
    assert embedded.index_fields[0] == N_FIELD
    assert len(plan(query, MONGODB).lookups) == 1


def test_geo_lookups_carry_no_type_on_a_store_with_one_field_filters() -> None:
    near = GeoQuery("near", {"type": "Point", "coordinates": [WEST, SOUTH]}, LOCATION, 100.0)
    query = EntityQuery(geo=near, types=((expand("A"),),))
    embedded = plan(query, EMBEDDED_STORE).geo
    assert embedded is not None
    assert embedded.rest == {}
    assert not embedded.probe_cells
    mongodb = plan(query, MONGODB).geo
    assert mongodb is not None
    assert mongodb.rest == {"type": expand("A")}


@st.composite
def _ranges(draw: st.DrawFn) -> tuple[list[str], list[Bucket]]:
    """Sorted ids and ranges over them of any sizes, some empty, cut anywhere."""
    ids = sorted(draw(st.sets(st.text("abc", min_size=1, max_size=4), max_size=40)))
    cuts = sorted(draw(st.sets(st.text("abc", min_size=1, max_size=4), max_size=12)))
    los = ["", *cuts]
    his: list[str | None] = [*cuts, None]
    buckets = [
        Bucket(lo, hi, sum(1 for i in ids if lo <= i and (hi is None or i < hi)))
        for lo, hi in zip(los, his, strict=True)
    ]
    return ids, buckets


@settings(max_examples=300, deadline=None)
@given(ranges=_ranges(), offset=st.integers(0, 45), want=st.integers(1, 12))
def test_a_page_is_read_from_the_ranges_that_hold_it_only(
    ranges: tuple[list[str], list[Bucket]], offset: int, want: int
) -> None:
    """The range a page is read from, skipped and limited, gives the same ids as the whole
    type would; it holds no more than the page and the two ranges at its ends."""
    ids, buckets = ranges
    found = page_range(buckets, offset, want)
    if found is None:
        assert ids[offset:] == []
        return
    within = [i for i in ids if found.lo <= i and (found.hi is None or i < found.hi)]
    assert within[found.skip : found.skip + want] == ids[offset : offset + want]
    largest = max(bucket.n for bucket in buckets)
    assert len(within) <= want + 2 * largest


def test_ranges_are_cut_every_size_entities() -> None:
    ids = [f"urn:x:{i:03d}" for i in range(7)]
    assert bounds(ids, 3) == [
        Bucket("", "urn:x:003", 3),
        Bucket("urn:x:003", "urn:x:006", 3),
        Bucket("urn:x:006", None, 1),
    ]
    assert bounds([], 3) == [Bucket("", None, 0)]


@st.composite
def walk_cases(draw: st.DrawFn) -> Case:
    """Queries of one type, by q and order alone: those a walk over the type's id ranges
    may answer."""
    kind = draw(st.sampled_from("AB"))
    tests: list[Test] = [lambda e: e.type == kind]
    q = draw(st.none() | Q)
    if q is not None:
        tests.append(q[1])
    query = EntityQuery(
        types=((expand(kind),),),
        q=None if q is None else parse_q(q[0]),
        expand=expand,
        order=draw(st.sampled_from(ORDERS)),
        limit=draw(st.integers(0, 6)),
        offset=draw(st.integers(0, 5)),
        count=draw(st.booleans()),
    )
    return Case(query, lambda e: all(test(e) for test in tests), None, draw(st.integers(1, 4)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entities=entity_sets(), case=walk_cases())
def test_a_query_walked_range_by_range_answers_what_brute_force_finds(
    entities: list[Entity], case: Case
) -> None:
    """Clause 5.7.2 (Query Entities) with count (clause 6.3.13) and orderBy (clause 4.23):
    read three entities at a time over the type's id ranges, the page, its order, `more`
    and the count are those of the whole selection."""
    expected, total = brute_force(entities, case)
    query = case.query
    page = run(entities, query, WALKING_STORE, bucket_size=case.bucket_size)
    assert [doc["_id"] for doc in page.docs] == expected[query.offset : query.offset + query.limit]
    assert page.total == (total if query.count else None)
    if query.limit:
        assert page.more == (total > query.offset + query.limit)


def _numbered(count: int, n: Callable[[int], int | None]) -> list[Doc]:
    return [
        build_document(
            Entity(f"urn:ngsi-ld:A:{i:02d}", "A", n(i), None, None, EPOCH).payload(), TERMS, EPOCH
        )
        for i in range(count)
    ]


def _range_reads(store: MemoryEntities) -> list[int]:
    """How many entities each read of an id range held."""
    return [
        sum(1 for doc in store.docs if matches(doc, lookup))
        for lookup in store.lookups
        if set(lookup) == {"type", "_id"}
    ]


def test_a_count_and_an_order_by_value_walk_the_type_a_few_entities_at_a_time() -> None:
    """`q=n>=0` with count, ordered by n descending (clauses 4.9, 4.23, 6.3.13): no read
    holds more than the walk's entities (and one range), and no lookup selects the whole
    type at once."""
    store = MemoryEntities(_numbered(20, lambda i: i % 7), bucket_size=1)
    query = EntityQuery(
        types=((expand("A"),),),
        q=parse_q("n>=0"),
        expand=expand,
        order=(SortKey(N_FIELD, descending=True),),
        limit=4,
        offset=1,
        count=True,
    )
    planned = plan(query, WALKING_STORE)
    assert planned.walk is not None
    page = asyncio.run(execute(store, planned))
    # n = i % 7, descending, then by id: 6 (ids 06, 13), 5 (05, 12, 19), ...
    assert [doc["_id"] for doc in page.docs] == [
        "urn:ngsi-ld:A:13",
        "urn:ngsi-ld:A:05",
        "urn:ngsi-ld:A:12",
        "urn:ngsi-ld:A:19",
    ]
    assert (page.total, page.more) == (20, True)
    reads = _range_reads(store)
    assert sum(reads) == 20
    assert max(reads) <= 3
    assert len(store.lookups) == len(reads)  # the plan's own lookups never ran


def test_a_walk_gives_way_to_an_index_that_finds_few() -> None:
    """`q=n==5` over a type of 20 where one entity matches: the first range read finds
    fewer matches than would fill one read over the whole type, so the attribute's
    index answers instead (one lookup per alternative), with the same answer."""
    store = MemoryEntities(_numbered(20, lambda i: 5 if i == 11 else 1), bucket_size=1)
    query = EntityQuery(types=((expand("A"),),), q=parse_q("n==5"), expand=expand, count=True)
    planned = plan(query, WALKING_STORE)
    assert planned.walk is not None and planned.walk.sampled
    page = asyncio.run(execute(store, planned))
    assert [doc["_id"] for doc in page.docs] == ["urn:ngsi-ld:A:11"]
    assert page.total == 1
    assert len(_range_reads(store)) == 1
    assert len(store.lookups) > 1


def test_only_one_type_on_a_walking_store_is_walked() -> None:
    by_value = EntityQuery(types=((expand("A"),),), q=parse_q("n>1"), expand=expand)
    assert plan(by_value, WALKING_STORE).walk is not None
    assert plan(by_value, MONGODB).walk is None
    two_types = EntityQuery(types=((expand("A"),), (expand("B"),)), q=parse_q("n>1"))
    assert plan(two_types, WALKING_STORE).walk is None
    collated = EntityQuery(types=((expand("A"),),), order=(SortKey(N_FIELD),), collation="fr")
    assert plan(collated, WALKING_STORE).walk is None
    type_alone = EntityQuery(types=((expand("A"),),))
    assert plan(type_alone, WALKING_STORE).walk is None  # its id ranges answer it


def test_a_geo_query_with_many_candidates_walks_the_type() -> None:
    """georel within (clause 4.10) a box holding every entity of a type, with count: the
    candidates are read over the type's id ranges, a few at a time, and the page and
    count are those of the whole type."""
    entities = [
        Entity(f"urn:ngsi-ld:A:{i:02d}", "A", None, None, _on_grid(i % 5, i // 5), EPOCH)
        for i in range(20)
    ]
    store = MemoryEntities(
        [build_document(e.payload(), TERMS, e.created) for e in entities], bucket_size=1
    )
    ring = [[WEST, SOUTH], [WEST + 9 * STEP, SOUTH], [WEST + 9 * STEP, SOUTH + 9 * STEP]]
    box = {"type": "Polygon", "coordinates": [[*ring, [WEST, SOUTH + 9 * STEP], [WEST, SOUTH]]]}
    query = EntityQuery(
        types=((expand("A"),),),
        geo=GeoQuery("within", box, LOCATION),
        expand=expand,
        limit=3,
        offset=2,
        count=True,
    )
    page = asyncio.run(execute(store, plan(query, WALKING_STORE)))
    assert [doc["_id"] for doc in page.docs] == [e.id for e in entities[2:5]]
    assert (page.total, page.more) == (20, True)
    reads = _range_reads(store)
    assert sum(reads) == 20
    assert max(reads) <= 3
    assert len(store.lookups) == len(reads)


def _on_grid(column: int, row: int) -> tuple[float, float]:
    return (WEST + (column + 0.3) * STEP, SOUTH + (row + 0.6) * STEP)
