"""Payload builders and assertions shared by the broker's integration tests."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LD = {"Content-Type": "application/ld+json"}


def new_id(kind: str = "Sensor") -> str:
    """A fresh entity id, so tests sharing a tenant never collide."""
    return f"urn:ngsi-ld:{kind}:{secrets.token_hex(6)}"


def entity(kind: str = "Sensor", entity_id: str | None = None, **attrs: Any) -> dict[str, Any]:
    """A normalized entity payload; keyword arguments are its attributes as given."""
    return {"id": entity_id or new_id(kind), "type": kind, **attrs}


def prop(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


def rel(target: str | list[str], **members: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": target, **members}


def geo(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def link(url: str) -> dict[str, str]:
    """A Link header that carries the @context URL (clause 6.3.5)."""
    return {"Link": f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'}


def assert_problem(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """The response is a ProblemDetails (clause 5.5.2) of the spec's error type and status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["type"] == ERRORS + error, body
    assert body["status"] == status
    assert isinstance(body.get("title"), str) and body["title"]
    return body


async def create(api: httpx.AsyncClient, payload: dict[str, Any], **kwargs: Any) -> str:
    """Create an entity and return its id; fails the test unless the broker answers 201."""
    response = await api.post("/entities", json=payload, **kwargs)
    assert response.status_code == 201, response.text
    return str(payload["id"])


async def fetch(api: httpx.AsyncClient, entity_id: str, **params: str) -> dict[str, Any]:
    """Retrieve an entity (200 expected) with the given query parameters."""
    response = await api.get(f"/entities/{entity_id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
