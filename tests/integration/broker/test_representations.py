"""Representations (clause 4.5.3-4.5.4, 4.5.16, 6.3.6-6.3.7): normalized, concise,
simplified (keyValues), JSON-LD and GeoJSON, and content negotiation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import CORE_CONTEXT, assert_problem, create, entity, fetch, geo, prop, rel

pytestmark = pytest.mark.integration

LANGUAGE = {"type": "LanguageProperty", "languageMap": {"it": "Duomo", "en": "Cathedral"}}
VOCAB = {"type": "VocabProperty", "vocab": "barn"}
JSON_VALUE = {"type": "JsonProperty", "json": {"any": ["json", 1]}}


def _rich(**extra: Any) -> dict[str, Any]:
    return entity(
        temperature=prop(21.5, unitCode="CEL", accuracy=prop(0.5)),
        status=prop("ok"),
        address=prop({"street": "Via Roma 1"}),
        isIn=rel("urn:ngsi-ld:Building:b1"),
        location=geo(11.25, 43.77),
        name=LANGUAGE,
        category=VOCAB,
        config=JSON_VALUE,
        depths={"type": "ListProperty", "valueList": [1, 2]},
        speed=[prop(10), prop(11, datasetId="urn:ngsi-ld:Dataset:gps")],
        **extra,
    )


async def test_simplified_representation_gives_values_only(api: httpx.AsyncClient) -> None:
    """Clause 4.5.4: keyValues and simplified are the same representation."""
    payload = _rich()
    await create(api, payload)
    for params in ({"options": "keyValues"}, {"options": "simplified"}, {"format": "simplified"}):
        body = await fetch(api, payload["id"], **params)
        assert body["temperature"] == 21.5
        assert body["status"] == "ok"
        assert body["address"] == {"street": "Via Roma 1"}
        assert body["isIn"] == "urn:ngsi-ld:Building:b1"
        assert body["location"] == {"type": "Point", "coordinates": [11.25, 43.77]}
        assert body["depths"] == [1, 2]


async def test_simplified_representation_keys_language_vocab_and_json_values(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.4: a LanguageProperty, VocabProperty or JsonProperty keeps its member key
    (languageMap, vocab, json) so that JSON-LD does not expand what it holds."""
    payload = _rich()
    await create(api, payload)
    body = await fetch(api, payload["id"], options="keyValues")
    assert body["name"] == {"languageMap": LANGUAGE["languageMap"]}
    assert body["category"] == {"vocab": "barn"}
    assert body["config"] == {"json": JSON_VALUE["json"]}


async def test_simplified_with_lang_gives_the_chosen_string(api: httpx.AsyncClient) -> None:
    payload = _rich()
    await create(api, payload)
    assert (await fetch(api, payload["id"], options="keyValues", lang="en"))["name"] == "Cathedral"


async def test_simplified_omits_system_attributes(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    body = await fetch(api, payload["id"], options="keyValues,sysAttrs")
    assert body == {"id": payload["id"], "type": "Sensor", "a": 1}


async def test_concise_representation_drops_what_is_implied(api: httpx.AsyncClient) -> None:
    """Clause 4.5.3: no attribute types; a lone value is the attribute itself."""
    payload = _rich()
    await create(api, payload)
    body = await fetch(api, payload["id"], format="concise")
    assert body["status"] == "ok"
    assert body["temperature"] == {"value": 21.5, "unitCode": "CEL", "accuracy": 0.5}
    assert body["address"] == {"value": {"street": "Via Roma 1"}}
    assert body["isIn"] == {"object": "urn:ngsi-ld:Building:b1"}
    assert body["name"] == {"languageMap": LANGUAGE["languageMap"]}
    assert body["category"] == {"vocab": "barn"}
    assert body["speed"] == [10, {"value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"}]


async def test_a_concise_entity_posted_back_is_the_same_entity(api: httpx.AsyncClient) -> None:
    """Clause 4.5.3: the concise representation is lossless."""
    payload = _rich()
    await create(api, payload)
    concise = await fetch(api, payload["id"], options="concise")
    copy_id = payload["id"] + "-copy"
    await create(api, {**concise, "id": copy_id})
    original = await fetch(api, payload["id"])
    copied = await fetch(api, copy_id)
    assert {**copied, "id": payload["id"]} == original


async def test_conflicting_representations_are_400(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.get(f"/entities/{payload['id']}", params={"options": "concise,keyValues"})
    assert_problem(response, 400, "BadRequestData")
    response = await api.get(f"/entities/{payload['id']}", params={"format": "pretty"})
    assert_problem(response, 400, "InvalidRequest")


async def test_json_answers_carry_the_context_in_a_link_header(api: httpx.AsyncClient) -> None:
    """Clause 6.3.6: with Accept application/json the @context is in a Link header."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.get(f"/entities/{payload['id']}", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "@context" not in response.json()
    assert f"<{CORE_CONTEXT}>" in response.headers["link"]
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in response.headers["link"]


async def test_json_ld_answers_carry_the_context_in_the_body(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.get(
        f"/entities/{payload['id']}", headers={"Accept": "application/ld+json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ld+json"
    assert response.json()["@context"] == CORE_CONTEXT
    assert "link" not in response.headers


async def test_accept_quality_values_choose_the_representation(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.get(
        f"/entities/{payload['id']}",
        headers={"Accept": "application/json;q=0.5, application/ld+json;q=0.9"},
    )
    assert response.headers["content-type"] == "application/ld+json"
    response = await api.get(f"/entities/{payload['id']}", headers={"Accept": "*/*"})
    assert response.headers["content-type"] == "application/json"


async def test_an_unacceptable_accept_header_is_406(api: httpx.AsyncClient) -> None:
    """Clause 6.3.6: a media type the broker cannot produce gives 406 Not Acceptable."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.get(f"/entities/{payload['id']}", headers={"Accept": "text/html"})
    assert_problem(response, 406, "InvalidRequest")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_an_unsupported_content_type_is_415(
    api: httpx.AsyncClient, content_type: str | None
) -> None:
    """Clause 6.3.4: bodies must be application/json or application/ld+json."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.post(
        "/entities", content=b'{"id": "urn:a:b", "type": "T"}', headers=headers
    )
    assert_problem(response, 415, "InvalidRequest")


async def test_geojson_feature_of_an_entity(api: httpx.AsyncClient) -> None:
    """Clause 4.5.16.2: Accept application/geo+json gives a Feature with the location."""
    payload = entity(a=prop(1), location=geo(11.25, 43.77))
    await create(api, payload)
    response = await api.get(
        f"/entities/{payload['id']}", headers={"Accept": "application/geo+json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    feature = response.json()
    assert feature["type"] == "Feature"
    assert feature["id"] == payload["id"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [11.25, 43.77]}
    assert feature["properties"]["type"] == "Sensor"
    assert feature["properties"]["a"] == prop(1)


async def test_geojson_geometry_property_chooses_the_geometry(api: httpx.AsyncClient) -> None:
    """Clause 6.3.15 (geometryProperty): another GeoProperty gives the Feature's geometry."""
    payload = entity(location=geo(11.25, 43.77), observationSpace=geo(10.4, 43.7))
    await create(api, payload)
    response = await api.get(
        f"/entities/{payload['id']}",
        params={"geometryProperty": "observationSpace", "options": "keyValues"},
        headers={"Accept": "application/geo+json"},
    )
    feature = response.json()
    assert feature["geometry"] == {"type": "Point", "coordinates": [10.4, 43.7]}
    assert feature["properties"]["location"] == {"type": "Point", "coordinates": [11.25, 43.77]}


async def test_geojson_feature_without_geometry_has_null_geometry(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.get(
        f"/entities/{payload['id']}", headers={"Accept": "application/geo+json"}
    )
    assert response.status_code == 200
    assert response.json()["geometry"] is None


async def test_geojson_feature_collection_of_a_query(api: httpx.AsyncClient) -> None:
    """Clause 4.5.16.3: a query answered in GeoJSON is a FeatureCollection."""
    first = entity("Bin", location=geo(11.0, 43.0))
    second = entity("Bin", location=geo(11.1, 43.1))
    await create(api, first)
    await create(api, second)
    response = await api.get(
        "/entities", params={"type": "Bin"}, headers={"Accept": "application/geo+json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    by_id = {feature["id"]: feature for feature in collection["features"]}
    assert set(by_id) == {first["id"], second["id"]}
    assert all(feature["type"] == "Feature" for feature in by_id.values())
    assert by_id[first["id"]]["geometry"] == {"type": "Point", "coordinates": [11.0, 43.0]}


async def test_geojson_is_not_offered_for_discovery(api: httpx.AsyncClient) -> None:
    await create(api, entity(a=prop(1)))
    response = await api.get("/types", headers={"Accept": "application/geo+json"})
    assert_problem(response, 406, "InvalidRequest")
