"""The IoT Agent provisioning API, served by uvicorn on a real port over the real store.

Driven over HTTP with the requests of the FIWARE IoT Agent (NGSI-LD) tutorial, byte for byte;
what was provisioned is checked the way ingest uses it: `DeviceRegistry.resolve`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import httpx
import pytest
from _servers import ThreadedServer
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from sensor_ingest._devices import AttributeMapping, Binding, StaticAttribute
from sensor_ingest._iot_api import iot_agent_router
from sensor_ingest._messages import DeviceKey, Rejection
from sensor_ingest._registry import DeviceRegistry

pytestmark = pytest.mark.integration

DATABASE = f"test_iot_api_{uuid4().hex[:8]}"

# FIWARE tutorial "IoT Agent over NGSI-LD", requests 2 and 3, exactly as published.
TUTORIAL_SERVICE = """{
    "services": [
        {
            "apikey": "4jggokgpepnvsb2uv4s40d59ov",
            "cbroker": "http://orion:1026",
            "entity_type": "Device",
            "resource": "/iot/d",
            "attributes": [
                {
                    "object_id": "bpm", "type": "Property", "name": "heartRate",
                    "metadata": { "unitCode": {"type": "Text", "value": "5K" }}
                },
                {
                    "object_id": "s", "name": "status", "type": "Property"
                },
                {
                    "object_id": "gps", "name": "location", "type": "geo:point"
                }
            ],
            "static_attributes": [
                {
                    "name": "category", "type": "Property", "value": "sensor"
                },
                {
                    "name": "supportedProtocol", "type": "Property", "value": "ul20"
                }
            ]
        }
    ]
}"""
TUTORIAL_DEVICE = """{
  "devices": [
    {
      "device_id": "temperature001",
      "entity_name": "urn:ngsi-ld:Device:temperature001",
      "entity_type": "Device",
      "timezone": "Europe/Berlin",
      "attributes": [
        {
          "object_id": "t",
          "name": "temperature",
          "type": "Property",
          "metadata": {
            "unitCode": {
              "type": "Text",
              "value": "CEL"
            }
          }
        }
      ],
      "static_attributes": [
        {
          "name": "controlledAsset",
          "type": "Relationship",
          "value": "urn:ngsi-ld:Building:barn001"
        }
      ]
    }
  ]
}"""
TUTORIAL_KEY = "4jggokgpepnvsb2uv4s40d59ov"


def _provisioning_app(store_url: str) -> FastAPI:
    """The router on a registry, as a deployment mounts it: the client closes with the app."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    registry = DeviceRegistry(client[DATABASE])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await registry.ensure_indexes()
        try:
            yield
        finally:
            await client.drop_database(DATABASE)
            await client.close()

    app = FastAPI(lifespan=lifespan)
    app.include_router(iot_agent_router(registry))
    return app


@pytest.fixture(scope="module")
def iot_url(store_url: str) -> Iterator[str]:
    with ThreadedServer(_provisioning_app(store_url)) as server:
        yield server.url


@pytest.fixture(scope="module")
async def registry(store_url: str) -> AsyncIterator[DeviceRegistry]:
    """The registry the API writes, read as ingest reads it (no cache: every read is fresh)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    try:
        yield DeviceRegistry(client[DATABASE], cache_ttl_s=0)
    finally:
        await client.close()


@pytest.fixture
async def http(iot_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=iot_url, timeout=30.0) as client:
        yield client


def _service(name: str | None = None) -> dict[str, str]:
    return {"fiware-service": name or f"svc{secrets.token_hex(5)}", "fiware-servicepath": "/"}


def _key() -> str:
    return f"key-{secrets.token_hex(6)}"


def _assert_error(response: httpx.Response, status: int, name: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"name", "message"}, body
    assert body["name"] == name, body
    assert fragment in body["message"], body


async def _post(
    http: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await http.post(path, json=body, headers=headers)


# ---------------------------------------------------------------- the tutorial


async def test_the_fiware_tutorial_provisions_as_with_the_iot_agent(
    http: httpx.AsyncClient, registry: DeviceRegistry
) -> None:
    headers = {
        "fiware-service": "openiot",
        "fiware-servicepath": "/",
        "Content-Type": "application/json",
    }
    created = await http.post("/iot/services", content=TUTORIAL_SERVICE, headers=headers)
    assert (created.status_code, created.content) == (201, b"")
    created = await http.post("/iot/devices", content=TUTORIAL_DEVICE, headers=headers)
    assert (created.status_code, created.content) == (201, b"")

    services = await http.get("/iot/services", headers=headers)
    assert services.status_code == 200
    assert services.json()["count"] == 1
    [service] = services.json()["services"]
    assert service["apikey"] == TUTORIAL_KEY
    assert service["entity_type"] == "Device"
    assert service["attributes"][0] == {
        "object_id": "bpm",
        "name": "heartRate",
        "type": "Property",
        "metadata": {"unitCode": {"type": "Text", "value": "5K"}},
    }
    assert service["attributes"][2]["type"] == "GeoProperty"

    device = await http.get("/iot/devices/temperature001", headers=headers)
    assert device.status_code == 200
    assert device.json() == {
        "device_id": "temperature001",
        "service": "openiot",
        "service_path": "/",
        "apikey": TUTORIAL_KEY,
        "format": "iotagent-json",
        "entity_name": "urn:ngsi-ld:Device:temperature001",
        "entity_type": "Device",
        "attributes": [
            {
                "object_id": "t",
                "name": "temperature",
                "type": "Property",
                "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
            }
        ],
        "static_attributes": [
            {
                "name": "controlledAsset",
                "type": "Relationship",
                "value": "urn:ngsi-ld:Building:barn001",
            }
        ],
    }

    # What ingest sees: the provisioned sensor, and an anonymous one of the group.
    sensor = await registry.resolve("iotagent-json", DeviceKey(TUTORIAL_KEY, "temperature001"))
    assert isinstance(sensor, Binding)
    assert (sensor.tenant, sensor.entity_id) == ("openiot", "urn:ngsi-ld:Device:temperature001")
    assert sensor.attributes["t"] == AttributeMapping("t", "temperature", unit_code="CEL")
    assert sensor.attributes["gps"] == AttributeMapping("gps", "location", "GeoProperty")
    motion = await registry.resolve("iotagent-json", DeviceKey(TUTORIAL_KEY, "motion003"))
    assert isinstance(motion, Binding)
    assert motion.entity_id == "urn:ngsi-ld:Device:motion003"
    assert StaticAttribute("category", "Property", "sensor") in motion.static_attributes

    # The same API key in another service is refused: a key names exactly one service.
    other = {"fiware-service": "otheriot", "Content-Type": "application/json"}
    taken = await http.post("/iot/services", content=TUTORIAL_SERVICE, headers=other)
    _assert_error(taken, 409, "DUPLICATE_GROUP", "belongs to another service")
    assert "openiot" not in taken.json()["message"]


# ------------------------------------------------------------------ lifecycle


async def test_groups_are_listed_updated_and_deleted_by_apikey(
    http: httpx.AsyncClient, registry: DeviceRegistry
) -> None:
    headers, key = _service(), _key()
    body = {
        "services": [
            {
                "apikey": key,
                "format": "ttn-v3",
                "profile": "toscana/AirQualityObserved",
                "autoprovision": False,
                "attributes": [
                    {"object_id": "temperature", "name": "temperature", "type": "Number"},
                    {"object_id": "humidity", "name": "relativeHumidity", "scale": 0.01},
                ],
            },
            {"apikey": _key(), "entity_type": "ParkingSpot", "format": "flat-json"},
        ]
    }
    assert (await _post(http, "/iot/services", body, headers)).status_code == 201
    listed = (await http.get("/iot/services", headers=headers)).json()
    assert listed["count"] == 2
    assert {s["format"] for s in listed["services"]} == {"ttn-v3", "flat-json"}
    only = (await http.get("/iot/services", params={"apikey": key}, headers=headers)).json()
    assert [s["apikey"] for s in only["services"]] == [key]
    assert only["services"][0]["entity_type"] == "AirQualityObserved"

    query = {"apikey": key, "resource": "/iot/json"}
    changed = await http.put(
        "/iot/services", params=query, json={"autoprovision": True}, headers=headers
    )
    assert (changed.status_code, changed.content) == (204, b"")
    binding = await registry.resolve("ttn-v3", DeviceKey(key, "eui-0001"))
    assert isinstance(binding, Binding)
    assert binding.profile == "toscana/AirQualityObserved"
    assert binding.attributes["humidity"].scale == 0.01

    deleted = await http.delete("/iot/services", params=query, headers=headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert isinstance(await registry.resolve("ttn-v3", DeviceKey(key, "eui-0001")), Rejection)
    again = await http.delete("/iot/services", params=query, headers=headers)
    _assert_error(again, 404, "DEVICE_GROUP_NOT_FOUND", key)
    missing = await http.put("/iot/services", params=query, json={}, headers=headers)
    _assert_error(missing, 404, "DEVICE_GROUP_NOT_FOUND")


async def test_devices_are_paged_updated_and_deleted(
    http: httpx.AsyncClient, registry: DeviceRegistry
) -> None:
    headers, key = _service(), _key()
    await _post(http, "/iot/services", {"services": [{"apikey": key, "entity_type": "T"}]}, headers)
    devices = [{"device_id": f"d{n}", "apikey": key} for n in (4, 2, 0, 3, 1)]
    assert (await _post(http, "/iot/devices", {"devices": devices}, headers)).status_code == 201

    page = await http.get("/iot/devices", params={"limit": 2, "offset": 1}, headers=headers)
    assert page.status_code == 200
    assert page.json()["count"] == 5
    assert [d["device_id"] for d in page.json()["devices"]] == ["d1", "d2"]
    assert page.json()["devices"][0]["entity_name"] == "urn:ngsi-ld:T:d1"
    everything = (await http.get("/iot/devices", headers=headers)).json()
    assert len(everything["devices"]) == 5

    changed = await http.put(
        "/iot/devices/d1",
        json={
            "entity_name": "urn:ngsi-ld:T:first",
            "attributes": [{"object_id": "v", "name": "a"}],
        },
        headers=headers,
    )
    assert (changed.status_code, changed.content) == (204, b"")
    binding = await registry.resolve("iotagent-json", DeviceKey(key, "d1"))
    assert isinstance(binding, Binding)
    assert binding.entity_id == "urn:ngsi-ld:T:first"
    assert binding.attributes == {"v": AttributeMapping("v", "a")}
    refused = await http.put("/iot/devices/d1", json={"device_id": "d9"}, headers=headers)
    _assert_error(refused, 400, "BAD_REQUEST", "cannot be changed")

    deleted = await http.delete("/iot/devices/d1", headers=headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    _assert_error(await http.get("/iot/devices/d1", headers=headers), 404, "DEVICE_NOT_FOUND")
    _assert_error(await http.delete("/iot/devices/d1", headers=headers), 404, "DEVICE_NOT_FOUND")
    _assert_error(
        await http.put("/iot/devices/d1", json={}, headers=headers), 404, "DEVICE_NOT_FOUND"
    )
    assert (await http.get("/iot/devices", headers=headers)).json()["count"] == 4


async def test_a_device_id_in_two_groups_is_named_with_its_apikey(http: httpx.AsyncClient) -> None:
    headers, one, two = _service(), _key(), _key()
    devices = [
        {"device_id": "bay-1", "apikey": one, "entity_type": "ParkingSpot", "format": "flat-json"},
        {"device_id": "bay-1", "apikey": two, "entity_type": "ParkingSpot", "format": "flat-json"},
    ]
    assert (await _post(http, "/iot/devices", {"devices": devices}, headers)).status_code == 201
    ambiguous = await http.get("/iot/devices/bay-1", headers=headers)
    _assert_error(ambiguous, 409, "AMBIGUOUS_DEVICE_ID", "?apikey=")
    named = await http.get("/iot/devices/bay-1", params={"apikey": two}, headers=headers)
    assert named.status_code == 200 and named.json()["apikey"] == two
    gone = await http.delete(
        "/iot/devices/bay-1", params={"apikey": one, "format": "flat-json"}, headers=headers
    )
    assert gone.status_code == 204
    assert (await http.get("/iot/devices/bay-1", headers=headers)).json()["apikey"] == two


# --------------------------------------------------------------------- tenants


async def test_two_services_never_see_nor_touch_each_other(
    http: httpx.AsyncClient, registry: DeviceRegistry
) -> None:
    firenze, prato, key = _service(), _service(), _key()
    group = {"services": [{"apikey": key, "entity_type": "AirQualityObserved"}]}
    assert (await _post(http, "/iot/services", group, firenze)).status_code == 201
    device = {"devices": [{"device_id": "aq-1", "apikey": key}]}
    assert (await _post(http, "/iot/devices", device, firenze)).status_code == 201

    assert (await http.get("/iot/services", headers=prato)).json() == {"count": 0, "services": []}
    assert (await http.get("/iot/devices", headers=prato)).json() == {"count": 0, "devices": []}
    _assert_error(await http.get("/iot/devices/aq-1", headers=prato), 404, "DEVICE_NOT_FOUND")
    _assert_error(await http.delete("/iot/devices/aq-1", headers=prato), 404, "DEVICE_NOT_FOUND")
    query = {"apikey": key, "resource": "/iot/json"}
    not_theirs = await http.put("/iot/services", params=query, json={}, headers=prato)
    _assert_error(not_theirs, 404, "DEVICE_GROUP_NOT_FOUND")
    not_theirs = await http.delete("/iot/services", params=query, headers=prato)
    _assert_error(not_theirs, 404, "DEVICE_GROUP_NOT_FOUND")
    taken = await _post(http, "/iot/services", group, prato)
    _assert_error(taken, 409, "DUPLICATE_GROUP", "belongs to another service")
    intruder = {"devices": [{"device_id": "aq-2", "apikey": key, "entity_type": "X"}]}
    taken = await _post(http, "/iot/devices", intruder, prato)
    _assert_error(taken, 409, "DUPLICATE_DEVICE_ID", "belongs to another service")

    binding = await registry.resolve("iotagent-json", DeviceKey(key, "aq-1"))
    assert isinstance(binding, Binding) and binding.tenant == firenze["fiware-service"]
    anonymous = await registry.resolve("iotagent-json", DeviceKey(key, "aq-2"))
    assert isinstance(anonymous, Binding)  # Firenze's group autoprovisions; Prato's X was not kept
    assert (anonymous.tenant, anonymous.entity_type) == (
        firenze["fiware-service"],
        "AirQualityObserved",
    )
    assert (await registry.list_devices(prato["fiware-service"], limit=10, offset=0))[1] == 0


async def test_the_service_header_is_case_insensitive(http: httpx.AsyncClient) -> None:
    name, key = f"Comune{secrets.token_hex(4)}", _key()
    body = {"services": [{"apikey": key, "entity_type": "T"}]}
    assert (await _post(http, "/iot/services", body, {"fiware-service": name})).status_code == 201
    listed = await http.get("/iot/services", headers={"fiware-service": name.lower()})
    assert listed.json()["services"][0]["service"] == name.lower()


async def test_a_rejected_post_leaves_nothing_behind(http: httpx.AsyncClient) -> None:
    owner, other, taken = _service(), _service(), _key()
    await _post(http, "/iot/services", {"services": [{"apikey": taken, "entity_type": "T"}]}, owner)
    body = {
        "services": [
            {"apikey": _key(), "entity_type": "T"},
            {"apikey": taken, "entity_type": "T"},
        ]
    }
    _assert_error(await _post(http, "/iot/services", body, other), 409, "DUPLICATE_GROUP")
    assert (await http.get("/iot/services", headers=other)).json()["count"] == 0


# ---------------------------------------------------------------------- errors


async def test_headers_are_checked_first(http: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/iot/services"),
        ("POST", "/iot/services"),
        ("GET", "/iot/devices"),
        ("DELETE", "/iot/devices/x"),
    ):
        missing = await http.request(method, path, headers={"fiware-servicepath": "/"})
        _assert_error(missing, 400, "MISSING_HEADERS", "fiware-service")
        path_header = {"fiware-service": "firenze", "fiware-servicepath": "/parks"}
        nested = await http.request(method, path, headers=path_header)
        _assert_error(nested, 400, "BAD_REQUEST", "fiware-servicepath '/parks' is not supported")
    bad = await http.get("/iot/services", headers={"fiware-service": "a/b"})
    _assert_error(bad, 400, "BAD_REQUEST", "fiware-service must be")


@pytest.mark.parametrize(
    ("content", "name", "fragment"),
    [
        (b"", "WRONG_SYNTAX", "needs a JSON body"),
        (b"{services: []}", "WRONG_SYNTAX", "not valid JSON"),
        (b"\xff\xfe", "WRONG_SYNTAX", "not valid JSON"),
        (b'{"services": [{"apikey": "k", "entity_type": "T", "x": NaN}]}', "WRONG_SYNTAX", "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "WRONG_SYNTAX", "not valid JSON"),
        (b"[]", "WRONG_SYNTAX", "$ must be a JSON object"),
        (b'{"services": []}', "WRONG_SYNTAX", "$.services is required"),
        (
            b'{"services": [{"apikey": "k", "entity_type": "T", "attributes": [{"type": "N"}]}]}',
            "WRONG_SYNTAX",
            "$.services[0].attributes[0].name is required",
        ),
        (
            b'{"services": [{"apikey": "k", "entity_type": "T", "commands": [{"name": "on"}]}]}',
            "BAD_REQUEST",
            "commands are not supported",
        ),
        (b'{"services": [{"apikey": "k", "model": "Nope"}]}', "BAD_REQUEST", "unknown model"),
    ],
)
async def test_invalid_bodies_are_400_never_500(
    http: httpx.AsyncClient, content: bytes, name: str, fragment: str
) -> None:
    response = await http.post("/iot/services", content=content, headers=_service())
    _assert_error(response, 400, name, fragment)


async def test_duplicates_are_409(http: httpx.AsyncClient) -> None:
    headers, key = _service(), _key()
    group = {"services": [{"apikey": key, "entity_type": "T"}]}
    assert (await _post(http, "/iot/services", group, headers)).status_code == 201
    _assert_error(await _post(http, "/iot/services", group, headers), 409, "DUPLICATE_GROUP", "PUT")
    device = {"devices": [{"device_id": "d1", "apikey": key}]}
    assert (await _post(http, "/iot/devices", device, headers)).status_code == 201
    _assert_error(
        await _post(http, "/iot/devices", device, headers), 409, "DUPLICATE_DEVICE_ID", "d1"
    )


async def test_query_parameters_are_checked(http: httpx.AsyncClient) -> None:
    headers = _service()
    for params, fragment in (
        ({"limit": "abc"}, "limit must be a whole number"),
        ({"limit": "0"}, "limit must be 1-1000"),
        ({"offset": "-1"}, "offset must be a whole number"),
    ):
        response = await http.get("/iot/devices", params=params, headers=headers)
        _assert_error(response, 400, "BAD_REQUEST", fragment)
    no_key = await http.delete("/iot/services", params={"resource": "/iot/d"}, headers=headers)
    _assert_error(no_key, 400, "BAD_REQUEST", "apikey query parameter is required")
    bad_format = await http.get("/iot/devices/x", params={"format": "ul"}, headers=headers)
    _assert_error(bad_format, 400, "BAD_REQUEST", "format must be one of")


async def test_a_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    filler = [{"name": f"a{n}", "type": "Property", "value": "x" * 1000} for n in range(1100)]
    body = json.dumps(
        {"services": [{"apikey": _key(), "entity_type": "T", "static_attributes": filler}]}
    )
    response = await http.post("/iot/services", content=body, headers=_service())
    _assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_the_routes_are_documented_in_openapi(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert set(paths["/iot/services"]) == {"get", "post", "put", "delete"}
    assert set(paths["/iot/devices"]) == {"get", "post"}
    assert set(paths["/iot/devices/{device_id}"]) == {"get", "put", "delete"}


async def test_openapi_lists_every_routes_headers_parameters_and_body(
    http: httpx.AsyncClient,
) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    headers = {"fiware-service", "fiware-servicepath", "authorization"}
    expected = {
        ("/iot/services", "get"): ({"limit", "offset", "apikey"}, None),
        ("/iot/services", "post"): (set(), "services"),
        ("/iot/services", "put"): ({"apikey", "resource", "format"}, "autoprovision"),
        ("/iot/services", "delete"): ({"apikey", "resource", "format"}, None),
        ("/iot/devices", "get"): ({"limit", "offset"}, None),
        ("/iot/devices", "post"): (set(), "devices"),
        ("/iot/devices/{device_id}", "get"): ({"device_id", "apikey", "format"}, None),
        ("/iot/devices/{device_id}", "put"): ({"device_id", "apikey", "format"}, "entity_name"),
        ("/iot/devices/{device_id}", "delete"): ({"device_id", "apikey", "format"}, None),
    }
    for (path, method), (parameters, member) in expected.items():
        operation = paths[path][method]
        declared = {p["name"]: p for p in operation["parameters"]}
        assert set(declared) == parameters | headers, (path, method)
        assert all(p.get("description") for p in declared.values() if p["in"] != "path")
        if member is None:
            assert "requestBody" not in operation, (path, method)
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert member in schema["properties"], (path, method)
        assert "$ref" not in json.dumps(schema), "the body's schema stands on its own"
    limit = next(p for p in paths["/iot/devices"]["get"]["parameters"] if p["name"] == "limit")
    documented = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}
    assert documented.items() <= limit["schema"].items()
    group = paths["/iot/services"]["post"]["requestBody"]["content"]["application/json"]
    assert group["schema"]["properties"]["services"]["items"]["required"] == ["apikey"]
