"""@context management as ETSI GS CIM 009 (V1.8) clauses 5.5.2, 6.3.5 and 6.29-6.30 word it:
the Location of a hosted context, the detailed listing, what cannot be deleted or reloaded,
and the errors of remote contexts that fail (issue #16)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pytest
from _servers import QuietHandler, serving

from ._helpers import CORE_CONTEXT, LD, assert_problem, create, entity, link, prop

pytestmark = pytest.mark.integration

TERMS = {"@context": {"reading": "https://example.org/ngsi-ld/reading"}}


class _Documents(QuietHandler):
    documents: ClassVar[dict[str, tuple[bytes, str]]] = {}

    def do_GET(self) -> None:
        found = self.documents.get(self.path)
        if found is None:
            self.send_error(404)
            return
        self.send_body(200, *found)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A real HTTP server serving a context, a non-JSON page and JSON without @context."""
    _Documents.documents = {
        "/context.jsonld": (json.dumps(TERMS).encode(), "application/ld+json"),
        "/page.html": (b"<html>not json</html>", "text/html"),
        "/no-context.json": (b'{"reading": "https://example.org/r"}', "application/json"),
    }
    with serving(_Documents) as url:
        yield url


@pytest.fixture(scope="module")
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/context.jsonld"


def _cached_path(url: str) -> str:
    return "/jsonldContexts/" + quote(url, safe="")


async def _details(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/jsonldContexts", params={"details": "true", **params})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def _assert_usage(entry: dict[str, Any], kind: str) -> None:
    assert entry["kind"] == kind
    datetime.fromisoformat(entry["createdAt"].replace("Z", "+00:00"))
    assert entry["numberOfHits"] >= 1
    datetime.fromisoformat(entry["lastUsage"].replace("Z", "+00:00"))


async def test_add_context_answers_a_relative_location(api: httpx.AsyncClient) -> None:
    """Clause 6.29.3.1: 201 with the hosted context's Location, relative like Create
    Entity's; the base URL plus it is the context's URL, which a Link header may name."""
    response = await api.post("/jsonldContexts", json=TERMS)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.startswith("/ngsi-ld/v1/jsonldContexts/")
    served = await api.get(str(api.base_url.join(location)))
    assert served.json() == TERMS
    payload = entity(reading=prop(1))
    await create(api, payload, headers=link(str(api.base_url.join(location))))


async def test_details_give_kind_creation_hits_and_last_usage(
    api: httpx.AsyncClient, site: str
) -> None:
    """Clause 6.29.3.2 with details=true: each entry has kind, createdAt, numberOfHits and
    lastUsage, for hosted and cached contexts and for the core context itself."""
    hosted = await api.post("/jsonldContexts", json=TERMS)
    hosted_url = str(api.base_url.join(hosted.headers["location"]))
    remote_url = site + "/context.jsonld"
    for reading in (1, 2):
        await create(api, entity(reading=prop(reading)), headers=link(hosted_url))
    await create(api, entity(reading=prop(3)), headers=link(remote_url))
    by_url = {entry["URL"]: entry for entry in await _details(api)}
    _assert_usage(by_url[hosted_url], "Hosted")
    assert by_url[hosted_url]["numberOfHits"] == 2
    _assert_usage(by_url[remote_url], "Cached")
    _assert_usage(by_url[CORE_CONTEXT], "Cached")


async def test_implicitly_created_is_a_valid_kind(api: httpx.AsyncClient) -> None:
    """Clause 6.29.3.2: kind is Hosted, Cached or ImplicitlyCreated."""
    assert await _details(api, kind="ImplicitlyCreated") == []
    response = await api.get("/jsonldContexts", params={"kind": "Borrowed"})
    assert_problem(response, 400, "BadRequestData")


async def test_the_core_context_is_served_and_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    """Clause 6.30.3.1-2: the core context is served; deleting or reloading it is 400."""
    served = await api.get(_cached_path(CORE_CONTEXT))
    assert served.status_code == 200
    assert "@context" in served.json()
    assert_problem(await api.delete(_cached_path(CORE_CONTEXT)), 400, "BadRequestData")
    reloaded = await api.delete(_cached_path(CORE_CONTEXT), params={"reload": "true"})
    assert_problem(reloaded, 400, "BadRequestData")


async def test_reload_is_for_cached_contexts_and_takes_true_or_false(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.30.3.2: reload applies to a Cached context only; reload=maybe is 400."""
    hosted = await api.post("/jsonldContexts", json=TERMS)
    local_id = hosted.headers["location"].rsplit("/", 1)[1]
    misuse = await api.delete(f"/jsonldContexts/{local_id}", params={"reload": "true"})
    assert_problem(misuse, 400, "BadRequestData")
    unparsable = await api.delete(f"/jsonldContexts/{local_id}", params={"reload": "maybe"})
    assert_problem(unparsable, 400, "BadRequestData")


async def test_an_unreachable_remote_context_is_504(
    api: httpx.AsyncClient, closed_port_url: str
) -> None:
    """Clause 5.5.2 (V1.8): LdContextNotAvailable is 504 Gateway Timeout."""
    response = await api.post("/entities", json=entity(), headers=link(closed_port_url))
    assert_problem(response, 504, "LdContextNotAvailable")


async def test_a_batch_entity_with_an_unreachable_context_fails_alone(
    api: httpx.AsyncClient, closed_port_url: str
) -> None:
    """Clause 6.14.3.1 and 5.2.16: in a batch of JSON-LD entities, one whose @context cannot
    be retrieved is an error of the 207 BatchOperationResult; the others are created."""
    good = {**entity(), "@context": CORE_CONTEXT}
    bad = {**entity(), "@context": closed_port_url}
    response = await api.post(
        "/entityOperations/create", content=json.dumps([good, bad]), headers=LD
    )
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["success"] == [good["id"]]
    [error] = result["errors"]
    assert error["entityId"] == bad["id"]
    assert error["error"]["status"] == 504
    assert error["error"]["type"].endswith("LdContextNotAvailable")


@pytest.mark.parametrize("path", ["/page.html", "/no-context.json"])
async def test_a_remote_document_that_is_no_context_is_400(
    api: httpx.AsyncClient, site: str, path: str
) -> None:
    """Clause 6.3.5: the @context must be a JSON-LD context; a reachable document that is not
    JSON, or has no @context member, is the request's error."""
    response = await api.get("/types", headers=link(site + path))
    assert_problem(response, 400, "BadRequestData")


@pytest.mark.parametrize(
    "url",
    [
        "http://" + "a" * 70 + ".example/context.jsonld",
        "http://example.org:99999/context.jsonld",
        "http://[::1/context.jsonld",
    ],
)
async def test_a_malformed_link_context_url_is_400(api: httpx.AsyncClient, url: str) -> None:
    """Clause 6.3.5: a Link header whose @context URL is not a valid URL is BadRequestData,
    never an internal error."""
    await create(api, entity())
    response = await api.get("/types", headers=link(url))
    assert_problem(response, 400, "BadRequestData")
