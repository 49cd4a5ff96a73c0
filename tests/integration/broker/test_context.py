"""@context handling (clause 5.5.7, 6.3.5, 5.13 and 6.29-6.30): Link header, in-body
@context, hosted contexts, the core context, unreachable contexts, expanded storage."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from _servers import QuietHandler, serving

from ._helpers import LD, assert_problem, create, entity, fetch, link, prop

pytestmark = pytest.mark.integration

FIWARE = "https://uri.fiware.org/ns/data-models#"
USER_CONTEXT = {
    "@context": {
        "fiware": FIWARE,
        "WasteContainer": "fiware:WasteContainer",
        "fillingLevel": "fiware:fillingLevel",
        "wasteType": {"@id": "fiware:wasteType", "@type": "@vocab"},
        "organic": "fiware:organic",
    }
}


class _ContextHandler(QuietHandler):
    documents: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_body(200, body, "application/ld+json")


@pytest.fixture(scope="module")
def context_server() -> Iterator[str]:
    """A real HTTP server in a thread that serves the user @context at /context.jsonld."""
    _ContextHandler.documents = {"/context.jsonld": json.dumps(USER_CONTEXT).encode()}
    with serving(_ContextHandler) as url:
        yield url


@pytest.fixture(scope="module")
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/context.jsonld"
    finally:
        sock.close()


def _bin(**extra: Any) -> dict[str, Any]:
    return entity(
        "WasteContainer",
        fillingLevel=prop(0.4),
        wasteType={"type": "VocabProperty", "vocab": "organic"},
        **extra,
    )


async def test_link_context_from_a_remote_server_expands_names(
    api: httpx.AsyncClient, context_server: str
) -> None:
    """Clause 6.3.5: a Link header's @context defines the terms of a JSON body."""
    url = context_server + "/context.jsonld"
    payload = _bin()
    await create(api, payload, headers=link(url))
    expanded = await fetch(api, payload["id"])
    assert expanded["type"] == FIWARE + "WasteContainer"
    assert expanded[FIWARE + "fillingLevel"] == prop(0.4)
    assert expanded[FIWARE + "wasteType"]["vocab"] == FIWARE + "organic"
    response = await api.get(f"/entities/{payload['id']}", headers=link(url))
    assert response.status_code == 200
    compacted = response.json()
    assert compacted["type"] == "WasteContainer"
    assert compacted["fillingLevel"] == prop(0.4)
    assert compacted["wasteType"] == {"type": "VocabProperty", "vocab": "organic"}
    assert f"<{url}>" in response.headers["link"]


async def test_names_of_one_context_are_not_those_of_the_default_vocab(
    api: httpx.AsyncClient, context_server: str
) -> None:
    """Clause 5.5.7: fillingLevel under the user context and without it are two attributes."""
    payload = _bin()
    await create(api, payload, headers=link(context_server + "/context.jsonld"))
    response = await api.post(f"/entities/{payload['id']}/attrs", json={"fillingLevel": prop(9)})
    assert response.status_code == 204, response.text
    body = await fetch(api, payload["id"])
    assert body[FIWARE + "fillingLevel"] == prop(0.4)
    assert body["fillingLevel"] == prop(9)


async def test_in_body_context_with_json_ld(api: httpx.AsyncClient) -> None:
    """Clause 6.3.5: with application/ld+json the @context is a member of the body."""
    payload = _bin()
    payload["@context"] = [USER_CONTEXT["@context"]]
    response = await api.post("/entities", content=json.dumps(payload), headers=LD)
    assert response.status_code == 201, response.text
    response = await api.get(
        f"/entities/{payload['id']}", headers={"Accept": "application/ld+json"}
    )
    body = response.json()
    assert body["type"] == FIWARE + "WasteContainer"
    assert FIWARE + "fillingLevel" in body


async def test_in_body_context_may_name_the_core_context_of_any_version(
    api: httpx.AsyncClient,
) -> None:
    """Annex B: any version of the ETSI core context URL resolves without a fetch."""
    for version in ("1.3", "1.6", "1.8", "1.9"):
        payload = entity(a=prop(1))
        payload["@context"] = [
            {"a": "https://example.org/a"},
            f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v{version}.jsonld",
        ]
        response = await api.post("/entities", content=json.dumps(payload), headers=LD)
        assert response.status_code == 201, (version, response.text)
        assert "https://example.org/a" in await fetch(api, payload["id"])


async def test_a_link_to_the_core_context_is_the_default(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.7.jsonld"
    await create(api, payload, headers=link(core))
    response = await api.get(f"/entities/{payload['id']}", headers=link(core))
    assert response.status_code == 200
    assert response.json()["a"] == prop(1)


async def test_link_header_with_json_ld_body_is_400(
    api: httpx.AsyncClient, context_server: str
) -> None:
    """Clause 6.3.5: a JSON-LD body takes its @context from the body, never from Link."""
    payload = _bin()
    payload["@context"] = USER_CONTEXT["@context"]
    response = await api.post(
        "/entities",
        content=json.dumps(payload),
        headers={**LD, **link(context_server + "/context.jsonld")},
    )
    assert_problem(response, 400, "BadRequestData")


async def test_json_ld_body_without_context_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/entities", content=json.dumps(_bin()), headers=LD)
    assert_problem(response, 400, "BadRequestData")


async def test_context_in_a_plain_json_body_is_400(api: httpx.AsyncClient) -> None:
    """Clause 6.3.5: an application/json body must not carry @context."""
    payload = _bin()
    payload["@context"] = USER_CONTEXT["@context"]
    response = await api.post("/entities", json=payload)
    assert_problem(response, 400, "BadRequestData")


async def test_hosted_context_is_served_and_used(api: httpx.AsyncClient) -> None:
    """Clause 5.13.2 and 6.29: a context added with POST /jsonldContexts is hosted and can be
    named in a Link header, resolved without leaving the broker."""
    response = await api.post("/jsonldContexts", json=USER_CONTEXT)
    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith("/ngsi-ld/v1/jsonldContexts/")
    url = str(api.base_url.join(response.headers["location"]))
    served = await api.get(url)
    assert served.status_code == 200
    assert served.json() == USER_CONTEXT
    listed = await api.get("/jsonldContexts")
    assert url in listed.json()
    payload = _bin()
    await create(api, payload, headers=link(url))
    assert (await fetch(api, payload["id"]))["type"] == FIWARE + "WasteContainer"
    details = await api.get("/jsonldContexts", params={"details": "true", "kind": "Hosted"})
    entry = next(item for item in details.json() if item["URL"] == url)
    assert entry["kind"] == "Hosted"
    assert entry["numberOfHits"] >= 1
    deleted = await api.delete(url)
    assert deleted.status_code == 204
    assert_problem(await api.get(url), 404, "ResourceNotFound")


async def test_hosting_a_document_without_context_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/jsonldContexts", json={"fillingLevel": "x"})
    assert_problem(response, 400, "BadRequestData")


async def test_a_refused_context_url_is_504_ld_context_not_available(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.5.2 (V1.8): a @context that cannot be retrieved gives LdContextNotAvailable,
    504."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    url = f"http://127.0.0.1:{port}/context.jsonld"
    response = await api.post("/entities", json=_bin(), headers=link(url))
    assert_problem(response, 504, "LdContextNotAvailable")


async def test_a_missing_context_document_is_504(
    api: httpx.AsyncClient, context_server: str
) -> None:
    response = await api.get("/types", headers=link(context_server + "/missing.jsonld"))
    assert_problem(response, 504, "LdContextNotAvailable")


async def test_a_silent_context_server_is_504_within_bounded_time(
    api: httpx.AsyncClient, silent_server: str
) -> None:
    """The broker does not hang on a @context server that never answers."""
    started = time.monotonic()
    response = await api.post("/entities", json=_bin(), headers=link(silent_server))
    assert_problem(response, 504, "LdContextNotAvailable")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("url", ["relative/context.jsonld", "urn:example:context"])
async def test_a_context_url_that_cannot_be_fetched_by_kind_is_400(
    api: httpx.AsyncClient, url: str
) -> None:
    response = await api.post("/entities", json=_bin(), headers=link(url))
    assert_problem(response, 400, "BadRequestData")
