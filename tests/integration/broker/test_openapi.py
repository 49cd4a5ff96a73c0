"""What /openapi.json, /docs and /redoc tell a user about the NGSI-LD API, and that they
tell the truth: every parameter described is one the broker reads, and the pages load
without any other host."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.datastructures import QueryParams

from context_broker import create_app
from context_broker._settings import BrokerSettings

from ._helpers import create, entity, new_id, prop

pytestmark = pytest.mark.integration

API = "/ngsi-ld/v1"
WRITES = {"post", "patch", "put"}
QUERY_ENTITIES = {"type", "q", "idPattern", "limit", "offset", "count", "options", "attrs"}
QUERY_ENTITIES |= {"georel", "geometry", "coordinates", "geoproperty", "id", "pick", "omit"}


@pytest.fixture
async def openapi(broker_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=broker_url) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200, response.text
    schema: dict[str, Any] = response.json()
    return schema


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in schema["paths"].items():
        if path.startswith(API):
            for method, operation in methods.items():
                yield path, method, operation


async def test_every_ngsi_ld_route_describes_its_parameters_body_and_answers(
    openapi: dict[str, Any],
) -> None:
    operations = list(_operations(openapi))
    assert len(operations) == 36
    for path, method, operation in operations:
        where = (method, path)
        declared = {(p["in"], p["name"]): p for p in operation["parameters"]}
        for name in re.findall(r"{(\w+)}", path):
            assert declared[("path", name)]["required"] is True, where
        assert ("header", "NGSILD-Tenant") in declared, where
        assert all(p.get("description") for p in declared.values()), where
        if method in WRITES:
            content = operation["requestBody"]["content"]
            assert {"application/json", "application/ld+json"} <= set(content), where
            assert all("example" in media for media in content.values()), where
        elif method not in WRITES:
            assert "requestBody" not in operation, where
        answers = operation["responses"]
        assert any(status.startswith("2") for status in answers), where
        assert "422" not in answers or path.endswith("/entityOperations/query"), where
        problem = answers["400"]["content"]["application/json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/ProblemDetails"}, where
    query = {p["name"] for p in openapi["paths"][f"{API}/entities"]["get"]["parameters"]}
    assert query >= QUERY_ENTITIES
    assert "ProblemDetails" in openapi["components"]["schemas"]
    assert "HTTPValidationError" not in str(openapi), "validation errors answer 400 here"


def test_the_key_scheme_guards_every_operation_in_the_regional_profile() -> None:
    schema = create_app(BrokerSettings(auth_required=True)).openapi()
    scheme = schema["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, operation in _operations(schema):
        assert operation["security"] == [{"apiKey": []}], (method, path)
    open_schema = create_app(BrokerSettings(auth_required=False)).openapi()
    assert all("security" not in op for _, _, op in _operations(open_schema))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names of the query parameters the broker looks up while the test runs."""
    seen: set[str] = set()
    original = QueryParams.__getitem__
    original_contains = QueryParams.__contains__

    def recording(self: QueryParams, key: str) -> str:
        seen.add(key)
        return original(self, key)

    def recording_contains(self: QueryParams, key: object) -> bool:
        if isinstance(key, str):
            seen.add(key)
        return original_contains(self, key)

    monkeypatch.setattr(QueryParams, "__getitem__", recording)
    monkeypatch.setattr(QueryParams, "__contains__", recording_contains)
    return seen


async def test_the_described_query_parameters_are_the_ones_the_broker_reads(
    api: httpx.AsyncClient, openapi: dict[str, Any], reads: set[str]
) -> None:
    """One request per route: the names the handler looked up equal the described ones."""
    entity_id = new_id("Room")
    await create(api, entity("Room", entity_id, temperature=prop(20)))
    body = entity("Room", temperature=prop(21))
    fragment = {"temperature": prop(22)}
    query = {"type": "Query", "entities": [{"type": "Room"}]}
    one = f"/entities/{entity_id}"
    sub_id = f"urn:ngsi-ld:Subscription:{entity_id.rsplit(':', 1)[1]}"
    subscription = {
        "id": sub_id,
        "type": "Subscription",
        "watchedAttributes": ["temperature"],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    calls: list[tuple[str, str, str, Any]] = [
        ("post", "/entities", "/entities", body),
        ("get", "/entities", "/entities?type=Room", None),
        ("post", "/entities/{entity_id}/attrs", f"{one}/attrs", fragment),
        ("patch", "/entities/{entity_id}/attrs", f"{one}/attrs", fragment),
        ("patch", "/entities/{entity_id}/attrs/{attr}", f"{one}/attrs/temperature", prop(1)),
        ("put", "/entities/{entity_id}/attrs/{attr}", f"{one}/attrs/temperature", prop(2)),
        ("get", "/entities/{entity_id}", one, None),
        ("get", "/temporal/entities", "/temporal/entities?type=Room", None),
        ("get", "/temporal/entities/{entity_id}", f"/temporal{one}", None),
        ("delete", "/temporal/entities/{entity_id}", f"/temporal{one}", None),
        ("patch", "/entities/{entity_id}", one, fragment),
        ("put", "/entities/{entity_id}", one, {"temperature": prop(3)}),
        ("delete", "/entities/{entity_id}/attrs/{attr}", f"{one}/attrs/temperature", None),
        ("delete", "/entities/{entity_id}/attrs", f"{one}/attrs", None),
        ("delete", "/entities/{entity_id}", one, None),
        ("delete", "/entities", "/entities?type=NoSuchType", None),
        ("post", "/entityOperations/query", "/entityOperations/query", query),
        ("post", "/entityOperations/create", "/entityOperations/create", [body | {"id": new_id()}]),
        ("post", "/entityOperations/upsert", "/entityOperations/upsert", [body]),
        ("post", "/entityOperations/update", "/entityOperations/update", [body]),
        ("post", "/entityOperations/merge", "/entityOperations/merge", [body]),
        ("post", "/entityOperations/delete", "/entityOperations/delete", [body["id"]]),
        ("get", "/types", "/types", None),
        ("get", "/types/{type_name}", "/types/Room", None),
        ("get", "/attributes", "/attributes", None),
        ("get", "/attributes/{attr_name}", "/attributes/temperature", None),
        ("get", "/info/sourceIdentity", "/info/sourceIdentity", None),
        ("post", "/jsonldContexts", "/jsonldContexts", {"@context": {"t": "urn:t"}}),
        ("get", "/jsonldContexts", "/jsonldContexts", None),
        ("get", "/jsonldContexts/{context_id}", "/jsonldContexts/unknown", None),
        ("delete", "/jsonldContexts/{context_id}", "/jsonldContexts/unknown", None),
        ("post", "/subscriptions", "/subscriptions", subscription),
        ("get", "/subscriptions", "/subscriptions", None),
        ("get", "/subscriptions/{subscription_id}", f"/subscriptions/{sub_id}", None),
        ("patch", "/subscriptions/{subscription_id}", f"/subscriptions/{sub_id}", {"q": "a>1"}),
        ("delete", "/subscriptions/{subscription_id}", f"/subscriptions/{sub_id}", None),
    ]
    routes = {(method, path) for path, method, _ in _operations(openapi)}
    assert {(method, API + path) for method, path, _, _ in calls} == routes
    for method, path, url, payload in calls:
        described = {
            p["name"]
            for p in openapi["paths"][API + path][method]["parameters"]
            if p["in"] == "query"
        }
        reads.clear()
        response = await api.request(method, url, json=payload)
        assert response.status_code < 500, (method, url, response.text)
        assert reads == described, (method, path)


async def test_docs_pages_load_their_assets_from_the_stack(broker_url: str) -> None:
    """/docs and /redoc work offline: every script, stylesheet and icon is served here."""
    async with httpx.AsyncClient(base_url=broker_url) as http:
        for page in ("/docs", "/redoc"):
            response = await http.get(page)
            assert response.status_code == 200, page
            assert response.headers["content-type"].startswith("text/html")
            html = response.text
            assert not re.search(r"https?://", html), f"{page} names another host"
            assets = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert len(assets) >= 2, page
            for asset in assets:
                assert asset.startswith("/") and not asset.startswith("//"), asset
                loaded = await http.get(asset)
                assert loaded.status_code == 200, asset
                assert loaded.content, asset
            assert "/openapi.json" in html
