"""The MongoDB filters that q terms become (their behaviour on a store: the integration test
tests/integration/test_q_on_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from hypothesis import given
from test_q_parser import queries

from context_broker._errors import BadRequestData
from context_broker._query import Query, parse_q, to_mongo
from context_broker._query._to_mongo import NEVER

EX = "https://ex.org/"


def expand(term: str) -> str:
    """Like a term map under `@vocab: EX`: IRIs and compact IRIs of unknown prefix stay."""
    return term if ":" in term else EX + term


def mongo(q: str) -> dict[str, Any]:
    return to_mongo(parse_q(q), expand)


def default(q: str) -> dict[str, Any]:
    """The condition on the default instance: the filter less its datasetId alternative."""
    *alternatives, instances = mongo(q)["$or"]
    assert next(iter(instances)).startswith("ds."), instances
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}


T = "attrs.https://ex=org/temperature"
DS = "ds.https://ex=org/temperature"


def test_existence_and_non_existence_use_the_attribute_field() -> None:
    assert default("temperature") == {T: {"$exists": True}}
    assert mongo("!temperature") == {T: {"$exists": False}, DS: {"$exists": False}}
    assert default("temperature.accuracy") == {
        f"{T}.sub.https://ex=org/accuracy": {"$exists": True}
    }


def test_a_term_also_matches_any_instance_with_a_dataset_id() -> None:
    """Clause 4.9: any instance; the guard is what the store looks up for that alternative."""
    guard = {f"{DS}.datasetId": {"$gt": ""}}
    assert mongo("temperature")["$or"][-1] == guard
    one = {"$or": [{"value": {"$gt": 20}}, {"valueList": {"$gt": 20}}]}
    assert mongo("temperature>20")["$or"][-1] == {
        **guard,
        DS: {"$elemMatch": {"datasetId": {"$exists": True}, **one}},
    }
    # A range must hold within one instance: the members are matched on one element.
    ranged = mongo("temperature==10..20")["$or"][-1][DS]["$elemMatch"]
    assert {"value": {"$elemMatch": {"$gte": 10, "$lte": 20}}} in ranged["$or"]
    assert mongo("!temperature.accuracy") == {
        f"{T}.sub.https://ex=org/accuracy": {"$exists": False},
        f"{DS}.sub.https://ex=org/accuracy": {"$exists": False},
    }


def test_names_are_expanded_and_their_dots_encoded() -> None:
    assert to_mongo(parse_q("t"), lambda term: "https://a.b/c.d")["$or"] == [
        {"attrs.https://a=b/c=d": {"$exists": True}},
        {"ds.https://a=b/c=d.datasetId": {"$gt": ""}},
    ]


def test_a_number_compares_the_value_first_then_a_list_property() -> None:
    assert default("temperature==20") == {"$or": [{f"{T}.value": 20}, {f"{T}.valueList": 20}]}
    assert default("temperature>20") == {
        "$or": [{f"{T}.value": {"$gt": 20}}, {f"{T}.valueList": {"$gt": 20}}]
    }


def test_a_string_is_also_looked_for_in_the_strings_of_a_language_property() -> None:
    n = "attrs.https://ex=org/name"
    assert default('name=="Firenze"')["$or"][:3] == [
        {f"{n}.value": "Firenze"},
        {f"{n}.valueList": "Firenze"},
        {f"{n}.lv": "Firenze"},
    ]
    assert default('name>"F"')["$or"][-1] == {f"{n}.lv": {"$gt": "F"}}
    assert "lv" not in str(default("name>1"))


def test_a_uri_is_also_looked_for_in_relationship_objects_and_expanded_in_vocab() -> None:
    r = "attrs.https://ex=org/refParking"
    assert default("refParking==urn:ngsi-ld:Parking:1") == {
        "$or": [
            {f"{r}.value": "urn:ngsi-ld:Parking:1"},
            {f"{r}.valueList": "urn:ngsi-ld:Parking:1"},
            {f"{r}.lv": "urn:ngsi-ld:Parking:1"},
            {f"{r}.object": "urn:ngsi-ld:Parking:1"},
            {f"{r}.objectList": "urn:ngsi-ld:Parking:1"},
            {f"{r}.objectList.object": "urn:ngsi-ld:Parking:1"},
            {f"{r}.vocab": "urn:ngsi-ld:Parking:1"},
        ]
    }
    g = "attrs.https://ex=org/gender"
    assert default("gender==Male") == {
        "$or": [
            {f"{g}.value": "Male"},
            {f"{g}.valueList": "Male"},
            {f"{g}.lv": "Male"},
            {f"{g}.vocab": EX + "Male"},
        ]
    }


def test_relationships_take_only_equality() -> None:
    # Clause 4.9: a Relationship with any operator but == and != does not match.
    assert "object" not in str(mongo('refParking>"urn:a:1"'))


def test_unequal_needs_the_target_element_and_all_its_members_to_differ() -> None:
    b = "attrs.https://ex=org/brandName"
    assert default('brandName!="Mercedes"') == {
        b: {"$exists": True},
        f"{b}.value": {"$ne": "Mercedes"},
        f"{b}.valueList": {"$ne": "Mercedes"},
        f"{b}.lv": {"$ne": "Mercedes"},
        f"{b}.vocab": {"$ne": EX + "Mercedes"},
    }
    assert default("temperature!=1,2") == {
        T: {"$exists": True},
        f"{T}.value": {"$nin": [1, 2]},
        f"{T}.valueList": {"$nin": [1, 2]},
    }


def test_a_list_is_any_of_and_keeps_true_apart_from_1() -> None:
    assert default("temperature==true,1,1") == {
        "$or": [{f"{T}.value": {"$in": [True, 1]}}, {f"{T}.valueList": {"$in": [True, 1]}}]
    }


def test_a_range_is_both_ends_included_and_one_array_element_must_lie_in_it() -> None:
    bounds = {"$gte": 10, "$lte": 20}
    assert default("temperature==10..20") == {
        "$or": [
            {f"{T}.value": {**bounds, "$not": {"$type": "array"}}},
            {f"{T}.value": {"$elemMatch": bounds}},
            {f"{T}.valueList": {"$elemMatch": bounds}},
        ]
    }
    assert default("temperature!=10..20") == {
        T: {"$exists": True},
        "$nor": [default("temperature==10..20")],
    }


def test_timestamps_of_an_attribute_compare_as_datetimes() -> None:
    when = datetime(2017, 12, 24, 12, tzinfo=UTC)
    assert default("temperature.observedAt>=2017-12-24T12:00:00Z") == {
        f"{T}.observedAt": {"$gte": when}
    }
    assert default("temperature.modifiedAt==2017-12-24") == {
        f"{T}.modifiedAt": datetime(2017, 12, 24, tzinfo=UTC)
    }
    assert default("temperature.observedAt!=2017-12-24T12:00:00Z") == {
        f"{T}.observedAt": {"$exists": True, "$ne": when}
    }
    assert mongo("temperature.observedAt==12:00:00") == NEVER
    assert default('temperature.unitCode=="CEL"') == {f"{T}.unitCode": "CEL"}


def test_a_datetime_in_a_value_matches_a_stored_datetime_or_its_iso_text() -> None:
    when = datetime(2026, 1, 31, 12, tzinfo=UTC)
    v = "attrs.https://ex=org/seen.value"
    texts = ["2026-01-31T12:00:00Z", "2026-01-31T12:00:00.000Z"]
    assert mongo("seen==2026-01-31T14:00:00+02:00")["$or"][0] == {v: {"$in": [when, *texts]}}
    assert mongo("seen<2026-01-31T12:00:00Z")["$or"][:2] == [
        {v: {"$lt": when}},
        {v: {"$lt": texts[0]}},
    ]
    assert mongo("seen==2026-01-31")["$or"][0] == {v: "2026-01-31"}
    assert mongo("seen>=08:00:00Z")["$or"][0] == {v: {"$gte": "08:00:00Z"}}


def test_a_trailing_path_enters_the_compound_value() -> None:
    a = "attrs.https://ex=org/address"
    assert default('address[city]=="Berlin"') == {
        "$or": [
            {f"{a}.value.city": "Berlin"},
            {f"{a}.json.city": "Berlin"},
            {f"{a}.languageMap.city": "Berlin"},
        ]
    }
    s = "attrs.https://ex=org/sensor.sub.https://ex=org/rawdata"
    assert default("sensor.rawdata[airquality.particulate]==40") == {
        "$or": [
            {f"{s}.value.airquality.particulate": 40},
            {f"{s}.json.airquality.particulate": 40},
        ]
    }
    # A member that does not exist is a target element that does not exist (clause 4.9).
    assert default("address[city]!=1")["$or"] == [
        {f"{a}.value.city": {"$exists": True}},
        {f"{a}.json.city": {"$exists": True}},
        {f"{a}.languageMap.city": {"$exists": True}},
    ]


def test_patterns_never_reach_the_store_only_their_candidates_do() -> None:
    """The broker tests patterns itself: the store selects entities with a string where
    the pattern looks, within the index range of a literal prefix the pattern is anchored
    at."""
    n = "attrs.https://ex=org/name"
    fields = [f"{n}.value", f"{n}.valueList", f"{n}.lv"]
    prato = {"$gte": "Pra", "$lt": "Prb"}
    assert default("name~=^Pra") == {"$or": [{field: prato} for field in fields]}
    strings = {"$or": [{field: {"$type": "string"}} for field in fields]}
    assert default("name~=(a+)+$") == strings
    assert default("name~=(^a|^b)") == strings
    assert default("name~=(?m)^Pra") == strings
    assert default("name!~=^Pra") == strings
    assert "$regex" not in str(mongo("name~=x;(a~=y|b!~=z)"))


def test_any_language_compares_the_stored_strings_of_the_language_map() -> None:
    lv = "attrs.https://ex=org/color.lv"
    assert default('color[*]=="$red"') == {lv: "$red"}
    assert default('color[*]!="red"') == {lv: {"$exists": True, "$ne": "red"}}
    assert default("color[*]~=^r") == {lv: {"$gte": "r", "$lt": "s"}}


@pytest.mark.parametrize("q", ["color[*]>1", "color[*]==1..2", "t.observedAt[x]==1"])
def test_unsupported_combinations_are_bad_request_data(q: str) -> None:
    with pytest.raises(BadRequestData, match=r"^q: "):
        mongo(q)


def test_and_or_flatten_and_precedence_shows() -> None:
    a, b, c = (mongo(name) for name in "abc")
    assert mongo("a;b;c") == {"$and": [a, b, c]}
    assert mongo("a|b|c") == {"$or": [*a["$or"], *b["$or"], *c["$or"]]}
    assert mongo("a|(b|c)") == mongo("a|b|c")
    assert mongo("a|b;c") == {"$or": [*a["$or"], {"$and": [b, c]}]}
    assert mongo("(a|b);c") == {"$and": [{"$or": [*a["$or"], *b["$or"]]}, c]}
    assert mongo("!a;!b") == {**mongo("!a"), **mongo("!b")}
    assert mongo("a==1;a==2") == {"$and": [mongo("a==1"), mongo("a==2")]}


def test_integers_beyond_64_bits_compare_as_doubles() -> None:
    assert mongo(f"a=={10**30}")["$or"][0] == {"attrs.https://ex=org/a.value": 1e30}
    assert mongo(f"a=={10**400}")["$or"][0] == {"attrs.https://ex=org/a.value": float("inf")}


@given(queries)
def test_every_query_translates_to_a_filter_bson_can_carry(query: Query) -> None:
    try:
        result = to_mongo(query, expand)
    except BadRequestData as exc:
        assert exc.detail.startswith("q: ")
    else:
        assert result
        bson.encode(result)  # no Python-only value (date, time, huge int) slipped through
