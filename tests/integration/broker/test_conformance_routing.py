"""Routing and the HTTP binding as ETSI GS CIM 009 (V1.8) clause 6 words them: trailing
slashes, missing ids, bodies without a length, merge-patch, Accept precedence, IRIs in paths,
the tenant header on NonexistentTenant and unknown query parameters (issue #16)."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import quote, urlsplit

import httpx
import pytest

from ._helpers import assert_problem, create, entity, fetch, geo, new_id, prop, rel
from ._receiver import Receiver

pytestmark = pytest.mark.integration

IRI_TYPE = "https://example.org/ngsi-ld/types/WeatherStation"
IRI_ATTR = "https://example.org/ngsi-ld/attrs/windSpeed"


def _path(entity_id: str) -> str:
    return "/entities/" + quote(entity_id, safe=":")


async def test_attrs_with_a_trailing_slash_is_the_attributes_collection(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.6.3.1 and 6.6.3.2: `/entities/{id}/attrs/` is the attributes collection, so
    POST appends and PATCH updates, instead of naming an entity id ending in "/attrs/"."""
    payload = entity(a=prop(1))
    await create(api, payload)
    appended = await api.post(_path(payload["id"]) + "/attrs/", json={"b": prop(2)})
    assert appended.status_code == 204, appended.text
    updated = await api.patch(_path(payload["id"]) + "/attrs/", json={"a": prop(10)})
    assert updated.status_code == 204, updated.text
    stored = await fetch(api, payload["id"], options="keyValues")
    assert (stored["a"], stored["b"]) == (10, 2)


async def test_delete_on_the_attributes_collection_deletes_every_attribute(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.6 gives `/entities/{id}/attrs/` POST and PATCH only; DELETE there is a Contesto
    extension (issue #16) that deletes every attribute and instance. What is no attribute
    (clause 5.2.4: id, type, scope, the system members) stays, and so does the entity."""
    payload = entity(
        scope="/Toscana/Firenze",
        a=prop(1, unitCode="CEL", observedAt="2026-01-31T12:00:00Z"),
        b=rel("urn:ngsi-ld:Building:1"),
        location=geo(11.25, 43.77),
        speed=[prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:gps")],
    )
    await create(api, payload)
    before = await fetch(api, payload["id"], options="sysAttrs")
    response = await api.delete(_path(payload["id"]) + "/attrs/")
    assert response.status_code == 204, response.text
    assert response.content == b""
    after = await fetch(api, payload["id"], options="sysAttrs")
    assert set(after) == {"id", "type", "scope", "createdAt", "modifiedAt"}
    assert (after["type"], after["scope"]) == ("Sensor", "/Toscana/Firenze")
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] > before["modifiedAt"]
    near = {"type": "Sensor", "georel": "near;maxDistance==1000"}
    near |= {"geometry": "Point", "coordinates": "[11.25,43.77]"}
    assert (await api.get("/entities", params=near)).json() == []
    assert (await api.get("/entities", params={"type": "Sensor", "q": "a==1"})).json() == []
    listed = await api.get("/entities", params={"type": "Sensor"})
    assert [found["id"] for found in listed.json()] == [payload["id"]]
    again = await api.delete(_path(payload["id"]) + "/attrs/")
    assert again.status_code == 204, again.text
    appended = await api.post(_path(payload["id"]) + "/attrs/", json={"c": prop(3)})
    assert appended.status_code == 204, appended.text
    assert await fetch(api, payload["id"], options="keyValues") == {
        "id": payload["id"],
        "type": "Sensor",
        "scope": "/Toscana/Firenze",
        "c": 3,
    }


async def test_delete_on_the_attributes_collection_of_an_unknown_entity_is_404(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.6 with 5.6.5's errors: an entity that does not exist is ResourceNotFound."""
    await create(api, entity())  # the tenant exists
    response = await api.delete(_path(new_id()) + "/attrs/")
    assert_problem(response, 404, "ResourceNotFound")


async def test_delete_on_the_attributes_collection_honours_type(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.1 and 6.7.3.2: `type` restricts a single-entity operation; an entity of
    another type is not found, and nothing is deleted."""
    payload = entity(a=prop(1))
    await create(api, payload)
    other = await api.delete(_path(payload["id"]) + "/attrs/", params={"type": "Building"})
    assert_problem(other, 404, "ResourceNotFound")
    assert (await fetch(api, payload["id"], options="keyValues"))["a"] == 1
    same = await api.delete(_path(payload["id"]) + "/attrs/", params={"type": "Sensor"})
    assert same.status_code == 204, same.text
    assert "a" not in await fetch(api, payload["id"])
    unknown = await api.delete(_path(payload["id"]) + "/attrs/", params={"deleteAll": "true"})
    assert_problem(unknown, 400, "InvalidRequest")


async def test_delete_on_the_attributes_collection_notifies_attribute_deleted(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Clause 5.8.1 / 5.11: the attributeDeleted trigger fires for each watched attribute that
    goes, as for Delete Attribute (6.7.3.2)."""
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "watchedAttributes": ["a"],
        "notificationTrigger": ["attributeDeleted"],
        "notification": {"endpoint": {"uri": receiver.url + "/deleted"}},
    }
    made = await api.post("/subscriptions", json=subscription)
    assert made.status_code == 201, made.text
    payload = entity(a=prop(1), b=prop(2))
    await create(api, payload)
    response = await api.delete(_path(payload["id"]) + "/attrs/")
    assert response.status_code == 204, response.text
    arrivals = await receiver.wait_for("/deleted", 1)
    data = arrivals[0].body["data"]
    assert [(item["id"], "a" in item, "b" in item) for item in data] == [
        (payload["id"], False, False)
    ]
    await asyncio.sleep(0.3)
    assert len(receiver.at("/deleted")) == 1, "the create notified no attributeDeleted"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/entities/?type=Sensor", None, 200),
        ("GET", "/types/", None, 200),
        ("GET", "/attributes/", None, 200),
        ("GET", "/subscriptions/", None, 200),
        ("GET", "/jsonldContexts/", None, 200),
        ("POST", "/entityOperations/upsert/", "batch", 201),
        ("POST", "/entities/", "entity", 201),
    ],
)
async def test_a_trailing_slash_on_a_collection_answers_in_place(
    api: httpx.AsyncClient, method: str, path: str, body: str | None, status: int
) -> None:
    """The resource URIs of clauses 6.4-6.31: a collection with a trailing slash is the same
    resource; it answers at once, with no redirect that would cost a second request."""
    await create(api, entity())  # the tenant exists
    payload: object = None
    if body == "entity":
        payload = entity()
    elif body == "batch":
        payload = [entity()]
    response = await api.request(method, path, json=payload)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_replace_or_merge_without_an_entity_id_is_400(
    api: httpx.AsyncClient, method: str
) -> None:
    """Clause 6.5.3.3 and 6.5.3.4: `/entities/` names no entity: BadRequestData, not 405."""
    response = await api.request(method, "/entities/", json={"a": prop(1)})
    assert_problem(response, 400, "BadRequestData")


async def _raw_request(broker_url: str, request: bytes) -> tuple[int, bytes]:
    address = urlsplit(broker_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1]), head


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
async def test_a_body_without_a_length_is_411_before_the_tenant_is_looked_up(
    broker_url: str, method: str
) -> None:
    """RFC 9110 15.5.12 as clause 6.3 binds it: a write with neither Content-Length nor
    chunked transfer is 411, even for a tenant that does not exist (no lookup happens)."""
    tenant = f"missing{secrets.token_hex(4)}"
    path = "/ngsi-ld/v1/entities" if method == "POST" else "/ngsi-ld/v1/entities/urn:x:y"
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\n"
        f"NGSILD-Tenant: {tenant}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, _ = await _raw_request(broker_url, request)
    assert status == 411


async def test_a_chunked_body_is_accepted(broker_url: str, tenant: str) -> None:
    """Chunked transfer declares the body's end: no 411."""
    body = b'{"id": "urn:ngsi-ld:Sensor:%s", "type": "Sensor"}' % secrets.token_hex(4).encode()
    request = (
        "POST /ngsi-ld/v1/entities HTTP/1.1\r\nHost: broker\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        f"NGSILD-Tenant: {tenant}\r\nConnection: close\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, _ = await _raw_request(broker_url, request)
    assert status == 201


async def test_merge_patch_json_merges_an_entity(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.4: Merge Entity accepts application/merge-patch+json."""
    payload = entity(a=prop(1), b=prop(2))
    await create(api, payload)
    response = await api.patch(
        _path(payload["id"]),
        content=b'{"a": {"type": "Property", "value": 5}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 204, response.text
    stored = await fetch(api, payload["id"], options="keyValues")
    assert (stored["a"], stored["b"]) == (5, 2)


async def test_merge_patch_json_updates_one_attribute(api: httpx.AsyncClient) -> None:
    """Clause 6.7.3.1: Partial Attribute Update accepts application/merge-patch+json."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.patch(
        _path(payload["id"]) + "/attrs/a",
        content=b'{"value": 7}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, payload["id"], options="keyValues"))["a"] == 7


async def test_merge_patch_json_is_not_a_replacement_body(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.3: Replace Entity takes JSON or JSON-LD only."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.put(
        _path(payload["id"]),
        content=b'{"type": "Sensor"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/ld+json, application/json", "application/json"),
        ("application/json, application/ld+json", "application/json"),
        ("application/json;q=0.5, application/ld+json", "application/ld+json"),
        ("application/json;q=0, */*", "application/ld+json"),
        ("application/ld+json;q=oops", "application/ld+json"),
        ("*/*", "application/json"),
    ],
)
async def test_accept_precedence(api: httpx.AsyncClient, accept: str, media_type: str) -> None:
    """Clause 6.3.4: the highest q wins; between equal q values JSON comes before JSON-LD;
    q=0 excludes a type; an unparsable q value is ignored, not a reason for 406."""
    payload = entity()
    await create(api, payload)
    response = await api.get(_path(payload["id"]), headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)


async def test_accept_excluding_every_offered_type_is_406(api: httpx.AsyncClient) -> None:
    """Clause 6.3.4: nothing acceptable is left once q=0 excludes JSON and JSON-LD."""
    payload = entity()
    await create(api, payload)
    response = await api.get(
        _path(payload["id"]),
        headers={"Accept": "application/json;q=0, application/ld+json;q=0"},
    )
    assert response.status_code == 406


async def test_types_and_attributes_take_percent_encoded_iris(api: httpx.AsyncClient) -> None:
    """Clause 6.26 and 6.28: {type} and {attrId} are names or full IRIs; an IRI is sent
    percent-encoded, `/` included."""
    station = {"id": f"urn:ngsi-ld:W:{secrets.token_hex(4)}", "type": IRI_TYPE}
    await create(api, {**station, IRI_ATTR: prop(3.5)})
    type_info = await api.get("/types/" + quote(IRI_TYPE, safe=""))
    assert type_info.status_code == 200, type_info.text
    assert type_info.json()["id"] == IRI_TYPE
    assert type_info.json()["entityCount"] == 1
    attribute_info = await api.get("/attributes/" + quote(IRI_ATTR, safe=""))
    assert attribute_info.status_code == 200, attribute_info.text
    assert attribute_info.json()["id"] == IRI_ATTR


async def test_nonexistent_tenant_echoes_the_tenant_header(broker_url: str) -> None:
    """Clause 6.3.14 and 5.5.10: an answer about a tenant carries NGSILD-Tenant, the
    NonexistentTenant error included."""
    tenant = f"absent{secrets.token_hex(4)}"
    async with httpx.AsyncClient(base_url=broker_url + "/ngsi-ld/v1") as http:
        response = await http.get("/entities/urn:ngsi-ld:X:1", headers={"NGSILD-Tenant": tenant})
    assert_problem(response, 404, "NonexistentTenant")
    assert response.headers["NGSILD-Tenant"] == tenant


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "{entity}", {"optoins": "keyValues"}),
        ("PATCH", "{entity}/attrs/a", {"bogus": "1"}),
        ("GET", "/entities", {"type": "Sensor", "limt": "5"}),
        ("POST", "/entities", {"dryRun": "true"}),
        ("GET", "/types", {"detail": "true"}),
        ("GET", "/jsonldContexts", {"kinds": "Cached"}),
        ("POST", "/entityOperations/upsert", {"option": "update"}),
        ("GET", "/subscriptions", {"page": "2"}),
    ],
)
async def test_an_unknown_query_parameter_is_invalid_request(
    api: httpx.AsyncClient, method: str, path: str, params: dict[str, str]
) -> None:
    """Clause 5.5.2 (InvalidRequest: the request is syntactically invalid): a parameter the
    operation does not define is an error, on every route, the two busiest included."""
    payload = entity(a=prop(1))
    await create(api, payload)
    bodies: dict[str, object] = {
        "POST /entities": entity(),
        "PATCH {entity}/attrs/a": prop(2),
        "POST /entityOperations/upsert": [entity()],
    }
    response = await api.request(
        method,
        path.replace("{entity}", _path(payload["id"])),
        params=params,
        json=bodies.get(f"{method} {path}"),
    )
    assert_problem(response, 400, "InvalidRequest")


@pytest.mark.parametrize("params", [{"format": "pretty"}, {"options": "prettyPrint"}])
async def test_an_invalid_format_or_options_value_is_invalid_request(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 6.3.7: format and options take the values the spec lists; another is
    InvalidRequest."""
    payload = entity()
    await create(api, payload)
    response = await api.get(_path(payload["id"]), params=params)
    assert_problem(response, 400, "InvalidRequest")


async def test_an_array_body_to_create_entity_is_invalid_request(api: httpx.AsyncClient) -> None:
    """Clause 6.4.3.1: the body is one entity (a JSON object): `[]` is InvalidRequest."""
    response = await api.post("/entities", json=[])
    assert_problem(response, 400, "InvalidRequest")
