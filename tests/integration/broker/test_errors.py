"""Client mistakes (clause 5.5.2, 6.3): each one is a ProblemDetails with the spec's error
type and status, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ._helpers import ERRORS, assert_problem, create, entity, fetch, new_id, prop

pytestmark = pytest.mark.integration


def _polygon(*ring: list[float]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [list(ring)]}}


async def test_invalid_json_is_400_invalid_request(api: httpx.AsyncClient) -> None:
    """Clause 5.5.2: a body that is not JSON is InvalidRequest."""
    response = await api.post(
        "/entities", content=b'{"id": "urn:a:b",', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "InvalidRequest")


async def test_an_empty_body_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/entities", content=b"", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "InvalidRequest")


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "not a uri", "type": "Sensor"},
        {"id": "Sensor1", "type": "Sensor"},
        {"id": 42, "type": "Sensor"},
        {"type": "Sensor"},
    ],
    ids=["spaces", "no-scheme", "number", "missing"],
)
async def test_an_entity_id_must_be_a_uri(api: httpx.AsyncClient, payload: object) -> None:
    """Clause 4.5.1: the id is a URI; anything else is BadRequestData."""
    assert_problem(await api.post("/entities", json=payload), 400, "BadRequestData")


async def test_an_entity_needs_a_type(api: httpx.AsyncClient) -> None:
    response = await api.post("/entities", json={"id": new_id(), "a": prop(1)})
    assert_problem(response, 400, "BadRequestData")


async def test_a_non_uri_id_in_the_path_is_400(api: httpx.AsyncClient) -> None:
    await create(api, entity())
    for method in ("GET", "DELETE"):
        response = await api.request(method, "/entities/not%20a%20uri")
        assert_problem(response, 400, "BadRequestData")


async def test_an_oversized_body_is_413(api: httpx.AsyncClient) -> None:
    payload = entity(blob=prop("x" * (3 * 1024 * 1024)))
    response = await api.post("/entities", json=payload)
    assert response.status_code == 413, response.text[:200]
    assert response.json()["status"] == 413
    assert response.json()["type"].startswith(ERRORS)
    assert_problem(await api.get(f"/entities/{payload['id']}"), 404, "NonexistentTenant")


@pytest.mark.parametrize(
    "location",
    [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 43]}},
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, -91]}},
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": ["11", 43]}},
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11]}},
        {"type": "GeoProperty", "value": {"type": "Circle", "coordinates": [11, 43]}},
        {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [[11, 43]]}},
        {"type": "GeoProperty", "value": "POINT(11 43)"},
        _polygon([11, 43], [12, 43], [12, 44], [11, 44]),
        _polygon([11, 43], [12, 43], [11, 43]),
    ],
    ids=[
        "longitude-out-of-range",
        "latitude-out-of-range",
        "string-coordinate",
        "one-coordinate",
        "unknown-geometry-type",
        "one-point-line",
        "wkt-string",
        "unclosed-ring",
        "short-ring",
    ],
)
async def test_invalid_geojson_is_400(api: httpx.AsyncClient, location: object) -> None:
    """Clause 4.7: GeoProperty values are valid GeoJSON geometries (RFC 7946)."""
    response = await api.post("/entities", json=entity(location=location))
    assert_problem(response, 400, "BadRequestData")


async def test_invalid_geojson_in_an_update_is_400_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, 43]}}
    entity_id = await create(api, entity(location=point))
    response = await api.patch(
        f"/entities/{entity_id}/attrs/location",
        json={"value": {"type": "Point", "coordinates": [11, 95]}},
    )
    assert_problem(response, 400, "BadRequestData")
    assert (await fetch(api, entity_id))["location"] == point


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("/entities/{id}", {"options": "everything"}, "InvalidRequest"),
        ("/entities/{id}", {"options": "keyValues,fast"}, "InvalidRequest"),
        ("/entities/{id}", {"lang": ""}, "BadRequestData"),
        ("/entities", {"type": "Sensor", "options": "nope"}, "InvalidRequest"),
        ("/types", {"details": "maybe"}, "BadRequestData"),
    ],
)
async def test_unknown_options_and_bad_parameters_are_400(
    api: httpx.AsyncClient, path: str, params: dict[str, str], error: str
) -> None:
    """An options value the spec does not list is InvalidRequest (clause 6.3.7); a bad value
    of a known parameter is BadRequestData."""
    entity_id = await create(api, entity(a=prop(1)))
    response = await api.get(path.format(id=entity_id), params=params)
    assert_problem(response, 400, error)


async def test_an_unknown_path_is_404_problem_details(api: httpx.AsyncClient) -> None:
    response = await api.get("/nothing/here")
    assert_problem(response, 404, "ResourceNotFound")


async def test_an_unsupported_method_is_405_problem_details(api: httpx.AsyncClient) -> None:
    # DELETE /entities is Purge Entities (clause 6.4.3.3); PUT has no operation there.
    response = await api.put("/entities", json={})
    assert response.status_code == 405
    assert response.json()["type"].startswith(ERRORS)


BAD_ENTITIES: dict[str, object] = {
    "array": [entity()],
    "string": "urn:ngsi-ld:Sensor:1",
    "null-attribute": entity(a=None),
    "unknown-kind": entity(a={"type": "Propertee", "value": 1}),
    "numeric-kind": entity(a={"type": 5, "value": 1}),
    "no-value": entity(a={"type": "Property"}),
    "relationship-to-non-uri": entity(a={"type": "Relationship", "object": "nobody"}),
    "relationship-object-number": entity(a={"type": "Relationship", "object": 5}),
    "bad-observed-at": entity(a=prop(1, observedAt="yesterday")),
    "numeric-observed-at": entity(a=prop(1, observedAt=5)),
    "bad-unit-code": entity(a=prop(1, unitCode=5)),
    "bad-dataset-id": entity(a=prop(1, datasetId="x y")),
    "bad-language-map": entity(a={"type": "LanguageProperty", "languageMap": {"it": 5}}),
    "language-map-list": entity(a={"type": "LanguageProperty", "languageMap": ["ciao"]}),
    "empty-vocab": entity(a={"type": "VocabProperty", "vocab": ""}),
    "vocab-number": entity(a={"type": "VocabProperty", "vocab": 5}),
    "value-list-not-list": entity(a={"type": "ListProperty", "valueList": 5}),
    "object-list-non-uri": entity(a={"type": "ListRelationship", "objectList": ["x"]}),
    "empty-instances": entity(a=[]),
    "null-sub-attribute": entity(a=prop(1, b=None)),
    "name-with-space": entity(**{"bad name": prop(1)}),
    "name-with-nul": entity(**{"a\u0000b": prop(1)}),
    "empty-name": entity(**{"": prop(1)}),
    "type-number": {"id": new_id(), "type": 5},
    "type-empty-list": {"id": new_id(), "type": []},
    "type-with-space": {"id": new_id(), "type": "Air Quality"},
    "bad-scope": entity(scope="Toscana"),
    "scope-number": entity(scope=5),
    "uint64-value": entity(a=prop(18446744073709551615)),
    "deep-value": entity(a=prop(json.loads("[" * 200 + "]" * 200))),
    "deep-sub-attributes": entity(a=json.loads('{"value": 1, "b": ' * 12 + "1" + "}" * 12)),
}


@pytest.mark.parametrize("payload", list(BAD_ENTITIES.values()), ids=list(BAD_ENTITIES))
async def test_malformed_entities_are_400_never_500(
    api: httpx.AsyncClient, payload: object
) -> None:
    response = await api.post("/entities", json=payload)
    assert response.status_code == 400, response.text
    assert response.json()["type"] in (ERRORS + "BadRequestData", ERRORS + "InvalidRequest")


_MERGE_DELETES = {"null-attribute", "null-sub-attribute"}  # JSON null in a merge is a delete


@pytest.mark.parametrize("payload", list(BAD_ENTITIES.values())[2:], ids=list(BAD_ENTITIES)[2:])
async def test_malformed_attributes_in_updates_are_400_never_500(
    api: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    entity_id = await create(api, entity(a=prop(1)))
    attrs = {k: v for k, v in payload.items() if k not in ("id", "type")} or {"type": 5}
    calls = [("POST", f"/entities/{entity_id}/attrs"), ("PATCH", f"/entities/{entity_id}/attrs")]
    if not any(v is None or (isinstance(v, dict) and None in v.values()) for v in attrs.values()):
        calls.append(("PATCH", f"/entities/{entity_id}"))
    for method, path in calls:
        response = await api.request(method, path, json=attrs)
        assert response.status_code == 400, (method, path, response.text)
    assert (await fetch(api, entity_id))["a"] == prop(1)


async def test_json_null_in_a_merge_deletes_like_ngsi_ld_null(api: httpx.AsyncClient) -> None:
    """Clause 5.6.17 is a JSON merge patch (RFC 7396): null removes the member."""
    entity_id = await create(api, entity(a=prop(1, b=prop(2), c=prop(3)), d=prop(4)))
    response = await api.patch(
        f"/entities/{entity_id}", json={"a": {"value": 1, "b": None}, "d": None}
    )
    assert response.status_code == 204, response.text
    body = await fetch(api, entity_id)
    assert body["a"] == prop(1, c=prop(3))
    assert "d" not in body
