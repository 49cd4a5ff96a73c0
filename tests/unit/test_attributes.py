"""Attribute parsing and rendering (clause 4.5): normalized and concise input, the
representations out, language choice and the values the store can hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_broker._attributes import (
    RenderOptions,
    check_json_value,
    parse_attribute,
    parse_instance,
    parse_lang,
    pick_language,
    render_attribute,
    render_instance,
)
from context_broker._errors import BadRequestData
from context_broker._jsonld import core_term_map

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
TERMS = core_term_map()
NORMALIZED = RenderOptions()
CONCISE = RenderOptions(format="concise")
SIMPLIFIED = RenderOptions(format="keyValues")


def _normalized(raw: object) -> Any:
    return render_attribute(parse_attribute(raw, "attr", TERMS, NOW), TERMS, NORMALIZED)


# --- concise input (clause 4.5.3) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("concise", "normalized"),
    [
        (5, {"type": "Property", "value": 5}),
        ("ok", {"type": "Property", "value": "ok"}),
        ({"value": {"a": 1}}, {"type": "Property", "value": {"a": 1}}),
        ({"object": "urn:a:b"}, {"type": "Relationship", "object": "urn:a:b"}),
        (
            {"type": "Point", "coordinates": [11, 43]},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, 43]}},
        ),
        (
            {"value": {"type": "Point", "coordinates": [11, 43]}},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, 43]}},
        ),
        (
            {"languageMap": {"it": "ciao"}},
            {"type": "LanguageProperty", "languageMap": {"it": "ciao"}},
        ),
        ({"vocab": "barn"}, {"type": "VocabProperty", "vocab": "barn"}),
        ({"json": {"k": [1]}}, {"type": "JsonProperty", "json": {"k": [1]}}),
        ({"valueList": [1, 2]}, {"type": "ListProperty", "valueList": [1, 2]}),
        (
            {"objectList": ["urn:a:b"]},
            {"type": "ListRelationship", "objectList": [{"object": "urn:a:b"}]},
        ),
        (
            {"value": 1, "accuracy": 0.5},
            {"type": "Property", "value": 1, "accuracy": {"type": "Property", "value": 0.5}},
        ),
    ],
)
def test_concise_input_means_the_normalized_attribute(concise: object, normalized: object) -> None:
    assert _normalized(concise) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"type": "Property"},
        {"type": "Thing", "value": 1},
        {"unitCode": "CEL"},
        {"type": "Relationship", "object": "no uri"},
        {"type": "Property", "value": 1, "observedAt": "soon"},
        {"type": "Property", "value": 1, "datasetId": "x"},
        {"type": "Property", "value": 1, "unitCode": ""},
        {"type": "LanguageProperty", "languageMap": {"it": 1}},
        {"type": "VocabProperty", "vocab": []},
        {"type": "ListRelationship", "objectList": [{"object": 1}]},
        [{"value": 1}, {"value": 2}],
    ],
)
def test_malformed_attributes_are_bad_request_data(raw: object) -> None:
    with pytest.raises(BadRequestData):
        parse_attribute(raw, "attr", TERMS, NOW)


def test_sub_attributes_nest_only_so_deep() -> None:
    raw: dict[str, Any] = {"value": 1}
    for _ in range(10):
        raw = {"value": 1, "sub": raw}
    with pytest.raises(BadRequestData, match="too deeply"):
        parse_instance(raw, "attr", TERMS, NOW)


def test_parsed_instances_carry_the_system_times_and_utc_observed_at() -> None:
    instance = parse_instance(
        {"value": 1, "observedAt": "2026-01-31T12:00:00.1234Z"}, "a", TERMS, NOW
    )
    assert instance["createdAt"] == instance["modifiedAt"] == NOW
    assert instance["observedAt"] == datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
    assert render_instance(instance, TERMS, NORMALIZED)["observedAt"] == "2026-01-31T12:00:00.1234Z"


@pytest.mark.parametrize("when", ["2026-01-31T13:00:00+01:00", "2026-01-31T12:00:00"])
def test_observed_at_outside_utc_z_is_refused(when: str) -> None:
    """Clause 4.6.3: DateTime values are UTC, written with Z."""
    with pytest.raises(BadRequestData, match="UTC"):
        parse_instance({"value": 1, "observedAt": when}, "a", TERMS, NOW)


# --- representations (clause 4.5.3-4.5.4, 4.15) ------------------------------------------------


def test_simplified_rendering_of_each_kind() -> None:
    rendered = {
        name: render_instance(parse_instance(raw, name, TERMS, NOW), TERMS, SIMPLIFIED)
        for name, raw in {
            "p": 5,
            "r": {"object": "urn:a:b"},
            "l": {"languageMap": {"it": "ciao"}},
            "v": {"vocab": "barn"},
            "j": {"json": {"k": 1}},
            "list": {"valueList": [1]},
        }.items()
    }
    assert rendered == {
        "p": 5,
        "r": "urn:a:b",
        "l": {"languageMap": {"it": "ciao"}},
        "v": {"vocab": "barn"},
        "j": {"json": {"k": 1}},
        "list": [1],
    }


def test_sys_attrs_render_in_the_spec_format() -> None:
    instance = parse_instance(5, "a", TERMS, NOW)
    rendered = render_instance(instance, TERMS, RenderOptions(sys_attrs=True))
    assert rendered["createdAt"] == rendered["modifiedAt"] == "2026-01-31T12:00:00.000Z"


def test_lang_turns_a_language_property_into_a_property() -> None:
    instance = parse_instance({"languageMap": {"it": "ciao", "en": "hi"}}, "a", TERMS, NOW)
    rendered = render_instance(instance, TERMS, RenderOptions(lang=("en",)))
    assert rendered == {"type": "Property", "value": "hi", "lang": "en"}


def test_lang_preferences_parse_by_quality() -> None:
    assert parse_lang("it;q=0.5,en,fr;q=0.8") == ("en", "fr", "it")
    assert parse_lang("*") == ("*",)
    with pytest.raises(BadRequestData):
        parse_lang("it;q=high")
    with pytest.raises(BadRequestData):
        parse_lang(" , ")


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (("en",), ("en", "hi")),
        (("de", "it"), ("it", "ciao")),
        (("de",), ("@none", "salve")),
        (("*",), ("it", "ciao")),
    ],
)
def test_pick_language(wanted: tuple[str, ...], expected: tuple[str, str]) -> None:
    assert pick_language({"it": "ciao", "en": "hi", "@none": "salve"}, wanted) == expected


def test_store_bounds_of_json_values() -> None:
    assert check_json_value({"a": [1, 2**63 - 1, -(2**63)]}, "v") == {"a": [1, 2**63 - 1, -(2**63)]}
    with pytest.raises(BadRequestData, match="64 bits"):
        check_json_value([2**63], "v")
    with pytest.raises(BadRequestData, match="NUL"):
        check_json_value({"a\x00": 1}, "v")
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(BadRequestData, match="levels deep"):
        check_json_value(deep, "v")


# --- round trip: concise -> normalized (hypothesis) --------------------------------------------

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "street", "n"]), inner, max_size=3),
    ),
    max_leaves=8,
)
uris = st.from_regex(r"urn:ngsi-ld:[A-Z][a-z]{1,6}:[a-z0-9]{1,6}", fullmatch=True)
names = st.sampled_from(["accuracy", "source", "providedBy", "level", "note"])
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))


def _instances(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    kinds = st.one_of(
        st.builds(lambda v: {"type": "Property", "value": v}, json_values),
        st.builds(lambda o: {"type": "Relationship", "object": o}, uris),
        st.builds(
            lambda m: {"type": "LanguageProperty", "languageMap": m},
            st.dictionaries(
                st.sampled_from(["it", "en", "@none"]), st.text(max_size=8), min_size=1
            ),
        ),
        st.builds(
            lambda v: {"type": "VocabProperty", "vocab": v}, st.sampled_from(["barn", "farm"])
        ),
        st.builds(lambda j: {"type": "JsonProperty", "json": {"j": j}}, json_values),
        st.builds(
            lambda v: {"type": "ListProperty", "valueList": v}, st.lists(scalars, max_size=3)
        ),
        st.builds(
            lambda lon, lat: {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [lon, lat]},
            },
            st.floats(min_value=-180, max_value=180),
            st.floats(min_value=-90, max_value=90),
        ),
    )
    extras = st.fixed_dictionaries(
        {},
        optional={"observedAt": timestamps, "unitCode": st.sampled_from(["CEL", "MMT"])},
    )
    subs = st.dictionaries(names, _instances(depth - 1), max_size=2) if depth > 0 else st.just({})
    return st.builds(_attribute, kinds, extras, subs)


def _attribute(kind: dict[str, Any], extra: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    """An attribute of `kind` with the extras its type takes (clause 4.5: no unit on a
    Relationship or JsonProperty) and sub-attributes."""
    if kind["type"] in ("Relationship", "JsonProperty"):
        extra = {key: value for key, value in extra.items() if key != "unitCode"}
    return {**kind, **extra, **sub}


@given(_instances(depth=2))
def test_concise_rendering_parses_back_to_the_same_attribute(raw: dict[str, Any]) -> None:
    """Clause 4.5.3: the concise representation is lossless."""
    instance = parse_instance(raw, "attr", TERMS, NOW)
    normalized = render_instance(instance, TERMS, NORMALIZED)
    concise = render_instance(instance, TERMS, CONCISE)
    again = parse_instance(concise, "attr", TERMS, NOW)
    assert render_instance(again, TERMS, NORMALIZED) == normalized


@given(st.lists(_instances(depth=1), min_size=1, max_size=3))
def test_multi_instance_attributes_round_trip_through_concise(
    raws: list[dict[str, Any]],
) -> None:
    with_ids = [{**raw, "datasetId": f"urn:ngsi-ld:Dataset:{i}"} for i, raw in enumerate(raws)]
    instances = parse_attribute(with_ids, "attr", TERMS, NOW)
    concise = render_attribute(instances, TERMS, CONCISE)
    again = parse_attribute(concise, "attr", TERMS, NOW)
    assert render_attribute(again, TERMS, NORMALIZED) == render_attribute(
        instances, TERMS, NORMALIZED
    )


# --- ngsildproof, an attribute's signature (clause 4.5.2.2, example C.11) ---------------------

PROOF = {
    "type": "Property",
    "entityIdSealed": "urn:ngsi-ld:Store:002",
    "entityTypeSealed": "Store",
    "value": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofValue": "z3"},
}


def test_the_sealed_members_of_a_proof_are_members_not_sub_attributes() -> None:
    """entityIdSealed and entityTypeSealed are non-reified: stored beside the value (the type
    expanded as annex B's @vocab says), rendered back as sent in normalized and concise."""
    signed = {"type": "Property", "value": {"postalCode": "42420"}, "ngsildproof": PROOF}
    [instance] = parse_attribute(signed, "address", TERMS, NOW)
    proof = instance["sub"]["https://uri=etsi=org/ngsi-ld/ngsildproof"]
    assert "sub" not in proof
    assert proof["entityTypeSealed"] == "https://uri.etsi.org/ngsi-ld/default-context/Store"
    assert render_instance(instance, TERMS, NORMALIZED) == signed
    concise_proof = {k: v for k, v in PROOF.items() if k != "type"}
    concise = {"value": {"postalCode": "42420"}, "ngsildproof": concise_proof}
    assert render_instance(instance, TERMS, CONCISE) == concise
    assert render_instance(instance, TERMS, SIMPLIFIED) == {"postalCode": "42420"}


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "Property", "value": 1, "entityTypeSealed": "Store"},
        {"type": "Property", "value": 1, "ngsildproof": PROOF | {"value": "z3"}},
        {"type": "Property", "value": 1, "ngsildproof": PROOF | {"entityTypeSealed": ""}},
    ],
    ids=["sealed-outside-proof", "proof-value-not-object", "empty-sealed-type"],
)
def test_a_malformed_proof_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        parse_instance(raw, "address", TERMS, NOW)
