"""q and scopeQ filters run on a real store: which stored entities each query selects."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from context_broker._names import encode_field
from context_broker._query import parse_q, parse_scope_q, scope_q_to_mongo, to_mongo
from context_broker._query._evaluate import q_holds, scope_holds
from context_broker._query._patterns import plan_patterns

pytestmark = pytest.mark.integration

EX = "https://ex.org/"
SEEN = datetime(2026, 1, 31, 12, tzinfo=UTC)


def expand(term: str) -> str:
    return term if ":" in term else EX + term


def instance(kind: str, member: str, value: object, **extra: Any) -> dict[str, Any]:
    return {"type": kind, member: value, "createdAt": SEEN, "modifiedAt": SEEN, **extra}


def prop(value: object, **extra: Any) -> dict[str, Any]:
    return instance("Property", "value", value, **extra)


def entity(number: int, attrs: dict[str, Any], **members: Any) -> dict[str, Any]:
    encoded = {encode_field(EX + name): value for name, value in attrs.items()}
    return {"_id": f"urn:ngsi-ld:Sensor:{number}", "type": [EX + "Sensor"], "attrs": encoded} | (
        members
    )


DOCUMENTS = [
    entity(
        1,
        {
            "temperature": prop(
                21.5,
                observedAt=SEEN,
                unitCode="CEL",
                sub={encode_field(EX + "accuracy"): prop(0.5)},
            ),
            "name": prop("Prato Nord"),
            "address": prop({"city": "Prato", "street": "Via Roma"}),
            "refParking": instance("Relationship", "object", "urn:ngsi-ld:Parking:1"),
            "tags": prop(["a", "b"]),
            "seen": prop("2026-01-31T12:00:00Z"),
        },
        scope=["/Toscana/Prato"],
    ),
    entity(
        2,
        {
            "temperature": prop(30),
            "name": prop("Firenze"),
            "refParking": instance("Relationship", "object", "urn:ngsi-ld:Parking:2"),
            "color": instance(
                "LanguageProperty", "languageMap", {"it": "rosso", "en": "red"}, lv=["rosso", "red"]
            ),
            "levels": instance("ListProperty", "valueList", [5, 30]),
            "gender": instance("VocabProperty", "vocab", EX + "Male"),
        },
        scope=["/Toscana/Firenze/Centro", "/Comune"],
    ),
    entity(
        3,
        {
            "temperature": prop("hot"),
            "status": prop(True),
            "readings": prop([5, 30]),
            "payload": instance("JsonProperty", "json", {"value": "Overstay 60 minutes"}),
        },
    ),
    entity(
        4,
        {
            "owners": instance(
                "ListRelationship", "objectList", ["urn:ngsi-ld:Person:1", "urn:ngsi-ld:Person:2"]
            ),
        },
        ds={encode_field(EX + "temperature"): [prop(99, datasetId="urn:ngsi-ld:Dataset:a")]},
        scope=["/Comune"],
    ),
    # Only instances with a datasetId: two levels, a title in two languages.
    entity(
        5,
        {},
        ds={
            encode_field(EX + "level"): [
                prop(12, datasetId="urn:ngsi-ld:Dataset:a"),
                prop(40, datasetId="urn:ngsi-ld:Dataset:b"),
            ],
            encode_field(EX + "title"): [
                instance(
                    "LanguageProperty",
                    "languageMap",
                    {"it": "Firenze", "en": "Florence"},
                    lv=["Firenze", "Florence"],
                    datasetId="urn:ngsi-ld:Dataset:a",
                )
            ],
        },
    ),
]


@pytest.fixture(scope="module")
async def entities(store_url: str) -> AsyncIterator[AsyncCollection[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    database = f"q{secrets.token_hex(6)}"
    try:
        collection = client[database]["entities"]
        await collection.insert_many([dict(document) for document in DOCUMENTS])
        yield collection
    finally:
        await client.drop_database(database)
        await client.close()


async def selected(collection: AsyncCollection[dict[str, Any]], query: dict[str, Any]) -> set[int]:
    found = await collection.find(query, {"_id": 1}).to_list()
    return {int(document["_id"].rsplit(":", 1)[1]) for document in found}


Q_CASES = [
    # existence: of any instance, with a datasetId or not
    ("temperature", {1, 2, 3, 4}),
    ("!temperature", {5}),
    ("!level", {1, 2, 3, 4}),
    ("temperature.accuracy", {1}),
    # comparisons keep to the query value's type (clause 4.9)
    ("temperature==21.5", {1}),
    ("temperature>25", {2, 4}),
    ("temperature<=30", {1, 2}),
    ('temperature=="hot"', {3}),
    ('temperature>"a"', {3}),
    # unequal: the target element exists and differs, other types differ
    ("temperature!=30", {1, 3, 4}),
    ('temperature!="hot"', {1, 2, 4}),
    # ranges and lists
    ("temperature==20..25", {1}),
    ("temperature!=20..25", {2, 3, 4}),
    ("temperature==21.5,30", {1, 2}),
    ("temperature!=21.5,30", {3, 4}),
    # an array value matches when one element does; a range needs one element inside it
    ("readings>20", {3}),
    ("readings==25..35", {3}),
    ("readings==10..20", set()),
    ("levels==30", {2}),
    ("levels==10..20", set()),
    ('tags=="b"', {1}),
    ('tags!="b"', set()),
    # sub-attributes and the members of an instance
    ("temperature.accuracy<1", {1}),
    ("temperature.observedAt>=2026-01-31T00:00:00Z", {1}),
    ("temperature.observedAt==2026-01-31T13:00:00+01:00", {1}),
    ("temperature.observedAt<2026-01-31", set()),
    ('temperature.unitCode=="CEL"', {1}),
    # a DateTime stored as text in a value
    ("seen==2026-01-31T12:00:00Z", {1}),
    ("seen>2026-01-31T11:00:00Z", {1}),
    # trailing paths into compound values, JsonProperty members, languages
    ('address[city]=="Prato"', {1}),
    ('address[city]!="Prato"', set()),
    ('address[zip]!="x"', set()),
    ('payload[value]=="Overstay 60 minutes"', {3}),
    ('color[en]=="red"', {2}),
    ('color[*]=="rosso"', {2}),
    ('color[*]=="blu","rosso"', {2}),
    ('color[*]!="rosso"', set()),
    ('color[*]!="verde"', {2}),
    ("color[*]~=^ros", {2}),
    ("color[*]!~=^ros", set()),
    # a LanguageProperty without a language: any of its strings (clause 4.9)
    ('color=="red"', {2}),
    ('color=="rosso","blu"', {2}),
    ('color!="rosso"', set()),
    ("color~=^re", {2}),
    ('color>"r"', {2}),
    # relationships: equality only
    ("refParking==urn:ngsi-ld:Parking:1", {1}),
    ('refParking!="urn:ngsi-ld:Parking:1"', {2}),
    ('refParking>"urn:"', set()),
    ("owners==urn:ngsi-ld:Person:2", {4}),
    ("owners!=urn:ngsi-ld:Person:2", set()),
    # VocabProperty: the query value is expanded
    ("gender==Male", {2}),
    ("gender!=Male", set()),
    # booleans are not numbers
    ("status==true", {3}),
    ("status==1", set()),
    # patterns match strings only
    ("name~=^Pra", {1}),
    ("name~=(?i)^prato", {1}),
    ("name!~=^Pra", {2}),
    ("temperature~=.", {3}),
    ("temperature!~=^c", {3}),
    # a pattern beside other conditions under an OR: the store answers those
    ("name~=^Pra|status==true", {1, 3}),
    ("(name~=Nord;temperature>20)|level>30", {1, 5}),
    ("(name~=Nord;temperature>30)|level>30", {5}),
    # logic: AND binds tighter than OR, parentheses override
    ('temperature==30|name=="Prato Nord";status==true', {2}),
    ('(temperature==30|name=="Prato Nord");!status', {1, 2}),
    ("(temperature;!readings)|owners", {1, 2, 4}),
    # any instance: one with a datasetId matches as the default one does
    ("temperature==99", {4}),
    ("level==40", {5}),
    ("level>30", {5}),
    # a range or unequal holds for one instance, not across two
    ("level==35..45", {5}),
    ("level==20..30", set()),
    ("level!=12", {5}),
    ("level!=12,40", set()),
    ('title=="Florence"', {5}),
    ('title[*]=="Firenze"', {5}),
    ('title[en]=="Florence"', {5}),
    ('title!="Roma"', {5}),
    ("title~=^Flo", {5}),
]


@pytest.mark.parametrize(("q", "ids"), Q_CASES)
async def test_q_selects(entities: AsyncCollection[dict[str, Any]], q: str, ids: set[int]) -> None:
    assert await q_selected(entities, q) == ids


@pytest.mark.parametrize(("q", "ids"), Q_CASES)
async def test_q_in_memory_agrees_with_the_store(
    entities: AsyncCollection[dict[str, Any]], q: str, ids: set[int]
) -> None:
    """A subscription's q, tested on one entity at a time, selects what a query selects."""
    in_memory = {
        int(document["_id"].rsplit(":", 1)[1])
        for document in DOCUMENTS
        if q_holds(parse_q(q), document, expand)
    }
    assert in_memory == ids == await q_selected(entities, q)


async def q_selected(collection: AsyncCollection[dict[str, Any]], q: str) -> set[int]:
    """The entities a q selects as the broker runs it: patterns tested in the broker on the
    candidates the store selects."""
    query = parse_q(q)
    plan = plan_patterns(query, None, expand)
    if plan is None:
        return await selected(collection, to_mongo(query, expand))
    candidates = to_mongo(query, expand)
    known = {
        part: {doc["_id"] for doc in await collection.find(mongo, {"_id": 1}).to_list()}
        for part in plan.undecided
        for mongo in [{"$and": [candidates, to_mongo(part, expand)]}]
    }
    rows = await collection.find(candidates, dict.fromkeys(plan.fields(), 1)).to_list()
    return {int(row["_id"].rsplit(":", 1)[1]) for row in rows if plan.holds(row, known)}


@pytest.mark.parametrize(
    ("scope_q", "ids"),
    [
        ("/Toscana/Prato", {1}),
        ("/Toscana", set()),
        ("/Toscana/#", {1, 2}),
        ("/Toscana/+/Centro", {2}),
        ("/#", {1, 2, 4}),
        ("/Toscana/Prato,/Toscana/Firenze/#", {1, 2}),
        ("(/Toscana/#;/Comune)", {2}),
        ("(/Toscana/#;/Comune)|/Toscana/Prato", {1, 2}),
        ("Comune", {2, 4}),
    ],
)
async def test_scope_q_selects(
    entities: AsyncCollection[dict[str, Any]], scope_q: str, ids: set[int]
) -> None:
    assert await selected(entities, scope_q_to_mongo(parse_scope_q(scope_q))) == ids
    in_memory = {
        int(document["_id"].rsplit(":", 1)[1])
        for document in DOCUMENTS
        if scope_holds(parse_scope_q(scope_q), document)
    }
    assert in_memory == ids
