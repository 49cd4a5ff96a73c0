"""Payload validation of ETSI GS CIM 009 (issue #16): a payload the spec forbids is refused
with 400 BadRequestData and nothing of it is stored; GeoJSON is checked for its syntax."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import LD, assert_problem, create, entity, fetch, new_id, prop, rel

pytestmark = pytest.mark.integration

NULL = "urn:ngsi-ld:null"


async def _refused(api: httpx.AsyncClient, payload: dict[str, Any], **kwargs: Any) -> None:
    """Create answers 400 BadRequestData and the entity does not exist afterwards."""
    response = await api.post("/entities", json=payload, **kwargs)
    assert_problem(response, 400, "BadRequestData")
    entity_id = payload.get("id")
    if isinstance(entity_id, str) and entity_id.isascii():
        assert (await api.get(f"/entities/{entity_id}")).status_code == 404


@pytest.mark.parametrize(
    "name", ["datasetId", "instanceId", "observedAt", "unitCode", "value", "object", "@value"]
)
async def test_a_reserved_core_term_is_no_attribute_name(api: httpx.AsyncClient, name: str) -> None:
    """Clause 4.6.3 (and Annex B): the core context's terms are reserved; an attribute may
    not be named after one."""
    await _refused(api, entity(**{name: prop(1)}))


@pytest.mark.parametrize("kind", ["type", "Property", "1Sensor", "9", "@id"])
async def test_an_entity_type_must_be_a_valid_term_or_iri(
    api: httpx.AsyncClient, kind: str
) -> None:
    """Clause 4.6.2/4.6.3: an entity type is a JSON-LD term (not a reserved one, not starting
    with a digit) or an IRI."""
    await _refused(api, {"id": new_id(), "type": kind})


async def test_an_attribute_carries_no_context_of_its_own(api: httpx.AsyncClient) -> None:
    """Clause 5.2.4: @context is a member of the entity, never of an attribute."""
    await _refused(api, entity(a={**prop(1), "@context": {"x": "https://example.org/x"}}))


async def test_scoped_contexts_are_refused(api: httpx.AsyncClient) -> None:
    """Clause 5.5.7: NGSI-LD @contexts define terms; a scoped context (@context inside a term
    definition) is not supported in a payload."""
    context = {"a": {"@id": "https://example.org/a", "@context": {"b": "https://example.org/b"}}}
    payload = {**entity(a=prop(1)), "@context": context}
    await _refused(api, payload, headers=LD)


async def test_a_number_inside_an_context_array_is_refused(api: httpx.AsyncClient) -> None:
    """Clause 5.5.7: @context entries are URIs or objects."""
    payload = {**entity(a=prop(1)), "@context": [{"a": "https://example.org/a"}, 5]}
    await _refused(api, payload, headers=LD)


@pytest.mark.parametrize(
    "char",
    ["\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\ufe0f", "\ufdd0", "\uffff", "\u3164"],
    ids=["rtl-override", "isolate", "zwsp", "zwj", "bom", "vs16", "nonchar", "uffff", "filler"],
)
async def test_an_entity_id_holds_no_invisible_character(api: httpx.AsyncClient, char: str) -> None:
    """Clause 4.6.2 (URI, RFC 3987): format characters, noncharacters, variation selectors and
    fillers are no part of an IRI."""
    visible = await create(api, entity(entity_id="urn:ngsi-ld:Sensor:ab"))
    await _refused(api, entity(entity_id=f"urn:ngsi-ld:Sensor:a{char}b"))
    listed = (await api.get("/entities", params={"type": "Sensor"})).json()
    assert [item["id"] for item in listed] == [visible]


@pytest.mark.parametrize(
    "attribute",
    [
        {"type": "Property", "value": 1, "object": "urn:a:b"},
        {"type": "Property", "value": 1, "languageMap": {"en": "x"}},
        {"type": "Property", "value": 1, "valueList": [1]},
        {"type": "Relationship", "object": "urn:a:b", "value": 1},
        {"type": "Relationship", "object": "urn:a:b", "unitCode": "CEL"},
        {"type": "Relationship", "object": "urn:a:b", "languageMap": {"en": "x"}},
        {"type": "ListProperty", "valueList": [1], "value": 1},
        {"type": "JsonProperty", "json": {"a": 1}, "value": 1},
        {"type": "JsonProperty", "json": {"a": 1}, "unitCode": "CEL"},
        {"type": "JsonProperty", "json": 5},
        {"type": "LanguageProperty", "languageMap": {"en": "x"}, "value": "x"},
        {"type": "LanguageProperty", "languageMap": {"": "x"}},
        {"type": "LanguageProperty", "languageMap": {"en": 5}},
    ],
    ids=[
        "property-object",
        "property-languagemap",
        "property-valuelist",
        "relationship-value",
        "relationship-unitcode",
        "relationship-languagemap",
        "listproperty-value",
        "jsonproperty-value",
        "jsonproperty-unitcode",
        "jsonproperty-number",
        "languageproperty-value",
        "languageproperty-empty-tag",
        "languageproperty-number",
    ],
)
async def test_a_member_foreign_to_the_attribute_type_is_refused(
    api: httpx.AsyncClient, attribute: dict[str, Any]
) -> None:
    """Clause 4.5.2-4.5.24 and 5.2.5-5.2.34: each attribute type has its own members."""
    await _refused(api, entity(a=attribute))


@pytest.mark.parametrize("location", [prop("Firenze"), rel("urn:ngsi-ld:Place:1")])
async def test_location_is_a_geoproperty(api: httpx.AsyncClient, location: Any) -> None:
    """Clause 4.7.1: location is the core GeoProperty of an entity."""
    await _refused(api, entity(location=location))


@pytest.mark.parametrize(
    "attribute",
    [prop(NULL), rel(NULL), {"type": "LanguageProperty", "languageMap": {"@none": NULL}}],
)
async def test_ngsi_ld_null_is_refused_on_create(api: httpx.AsyncClient, attribute: Any) -> None:
    """Clause 4.5.0 (NGSI-LD Null): urn:ngsi-ld:null deletes in update and merge; there is
    nothing to delete in a create."""
    await _refused(api, entity(a=attribute))
    await _refused(api, entity(a=prop(1, b=attribute)))


@pytest.mark.parametrize(
    "when", ["2026-01-31T12:00:00+01:00", "2026-01-31T12:00:00", "2026-01-31T12:00:00+00:00"]
)
async def test_observed_at_is_utc_with_z(api: httpx.AsyncClient, when: str) -> None:
    """Clause 4.6.3/5.2.3: DateTime values are in UTC, in the form ...Z."""
    await _refused(api, entity(a=prop(1, observedAt=when)))


async def test_a_partial_update_does_not_change_the_attribute_type(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.4: Partial Attribute Update changes members of an attribute; a fragment of
    another attribute type is BadRequestData."""
    entity_id = await create(api, entity(a=prop(1)))
    response = await api.patch(f"/entities/{entity_id}/attrs/a", json=rel("urn:ngsi-ld:X:1"))
    assert_problem(response, 400, "BadRequestData")
    assert (await fetch(api, entity_id))["a"] == prop(1)


async def test_a_self_intersecting_polygon_is_stored(api: httpx.AsyncClient) -> None:
    """Clause 4.7.1: GeoJSON as RFC 7946 defines it, a syntax; OGC validity is not asked."""
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    entity_id = await create(api, entity(area={"type": "GeoProperty", "value": bowtie}))
    assert (await fetch(api, entity_id))["area"]["value"] == bowtie


async def test_string_encoded_geojson_is_accepted_and_normalized(api: httpx.AsyncClient) -> None:
    """Clause 4.7.1: a GeoProperty value may be GeoJSON given as a string; it is stored and
    answered as a JSON object."""
    point = {"type": "Point", "coordinates": [11.25, 43.77]}
    text = '{"type": "Point", "coordinates": [11.25, 43.77]}'
    entity_id = await create(api, entity(location={"type": "GeoProperty", "value": text}))
    assert (await fetch(api, entity_id))["location"]["value"] == point
    near = {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[11.25,43.77]"}
    found = (await api.get("/entities", params={"type": "Sensor", **near})).json()
    assert [item["id"] for item in found] == [entity_id]
