"""The regional profile keeps tenants apart: hosted and cached @contexts, suspension, keys
of the development profile, and what a reader key may POST.

A regional broker and a development one (the open admin API) share one database, as a
stack started once without and then with `CONTESTO_AUTH_REQUIRED=true` does.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import quote

import httpx
import pytest
from _servers import QuietHandler, ThreadedServer, serving

from context_broker import BrokerSettings, create_app
from regional_tenants import REGION_TENANT, TenantRegistry, issue_key, onboard
from regional_tenants._tenants import Tenant
from store_edge import connect

pytestmark = pytest.mark.integration

CONTEXT = {"@context": {"secret": "https://livorno.example/vocab#secret"}}
REMOTE_CONTEXT = {"@context": {"level": "https://prato.example/vocab#level"}}


@dataclass(frozen=True)
class Region:
    url: str
    dev_url: str
    keys: dict[str, str]


def _auth(key: str, tenant: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    return headers


@pytest.fixture(scope="module")
async def region(store_url: str) -> AsyncIterator[Region]:
    """Region, Prato, Livorno and Pisa onboarded with admin keys; Pisa will be suspended."""
    prefix = f"t{secrets.token_hex(4)}"
    client = connect(store_url)
    try:
        registry = TenantRegistry(client[f"{prefix}__platform"])
        region = Tenant(REGION_TENANT, "region", "Regione Toscana", datetime.now(UTC))
        await onboard(registry, region, actor="test")
        keys = {"region": await issue_key(registry, REGION_TENANT, "region-admin", actor="test")}
    finally:
        await client.close()
    regional = BrokerSettings(
        mongo_url=store_url,
        database_prefix=prefix,
        auth_required=True,
        auto_create_tenants=False,
        context_fetch_allow="127.0.0.1",
    )
    dev = BrokerSettings(mongo_url=store_url, database_prefix=prefix)
    with ThreadedServer(create_app(regional)) as server, ThreadedServer(create_app(dev)) as open_:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            for comune in ("prato", "livorno", "pisa"):
                answer = await http.post(
                    "/admin/tenants", json={"comune": comune}, headers=_auth(keys["region"])
                )
                assert answer.status_code == 201, answer.text
                keys[comune] = answer.json()["adminKey"]
        yield Region(server.url, open_.url, keys)


async def test_hosted_contexts_belong_to_their_tenant(region: Region) -> None:
    livorno, prato = _auth(region.keys["livorno"], "livorno"), _auth(region.keys["prato"], "prato")
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        added = await http.post("/ngsi-ld/v1/jsonldContexts", json=CONTEXT, headers=livorno)
        assert added.status_code == 201, added.text
        path = added.headers["location"].lstrip("/")
        url = f"{region.url}/{path}"
        listed = await http.get("/ngsi-ld/v1/jsonldContexts", headers=prato)
        read = await http.get(f"/{path}", headers=prato)
        deleted = await http.delete(f"/{path}", headers=prato)
        own = await http.get(f"/{path}", headers=livorno)
        own_list = await http.get("/ngsi-ld/v1/jsonldContexts", headers=livorno)
    assert listed.status_code == 200
    assert url not in listed.json()
    assert read.status_code == 404, read.text
    assert deleted.status_code == 404, deleted.text
    assert own.json() == CONTEXT
    assert url in own_list.json()


class _RemoteContext(QuietHandler):
    """Serves REMOTE_CONTEXT at any path and counts the downloads."""

    downloads: ClassVar[int] = 0

    def do_GET(self) -> None:
        type(self).downloads += 1
        self.send_body(200, json.dumps(REMOTE_CONTEXT).encode(), "application/ld+json")


@pytest.fixture(scope="module")
def context_site() -> Iterator[str]:
    """A real web server on a loopback port, standing for a public @context site."""
    with serving(_RemoteContext) as url:
        yield url


def _link(url: str) -> dict[str, str]:
    return {
        "Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    }


def _cached(url: str) -> str:
    return "/ngsi-ld/v1/jsonldContexts/" + quote(url, safe="")


async def test_cached_contexts_belong_to_the_tenants_that_used_them(
    region: Region, context_site: str
) -> None:
    prato, livorno = _auth(region.keys["prato"], "prato"), _auth(region.keys["livorno"], "livorno")
    url = f"{context_site}/prato-{secrets.token_hex(4)}.jsonld"
    cached = {"kind": "Cached"}
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        used = await http.get("/ngsi-ld/v1/types", headers={**prato, **_link(url)})
        assert used.status_code == 200, used.text
        prato_list = await http.get("/ngsi-ld/v1/jsonldContexts", params=cached, headers=prato)
        livorno_list = await http.get("/ngsi-ld/v1/jsonldContexts", params=cached, headers=livorno)
        livorno_read = await http.get(_cached(url), headers=livorno)
        livorno_evict = await http.delete(_cached(url), headers=livorno)
        prato_read = await http.get(_cached(url), headers=prato)
        prato_evict = await http.delete(_cached(url), headers=prato)
        after = await http.get("/ngsi-ld/v1/jsonldContexts", params=cached, headers=prato)
    assert url in prato_list.json()
    assert url not in livorno_list.json()
    assert livorno_read.status_code == 404, livorno_read.text
    assert livorno_evict.status_code == 404, livorno_evict.text
    assert prato_read.json() == REMOTE_CONTEXT
    assert prato_evict.status_code == 204, prato_evict.text
    assert url not in after.json()


async def test_one_tenant_s_eviction_leaves_another_s_cached_context_in_place(
    region: Region, context_site: str
) -> None:
    prato, livorno = _auth(region.keys["prato"], "prato"), _auth(region.keys["livorno"], "livorno")
    url = f"{context_site}/shared-{secrets.token_hex(4)}.jsonld"
    cached = {"kind": "Cached"}
    downloads = _RemoteContext.downloads
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        for tenant in (prato, livorno):
            used = await http.get("/ngsi-ld/v1/types", headers={**tenant, **_link(url)})
            assert used.status_code == 200, used.text
        evicted = await http.delete(_cached(url), headers=livorno)
        again = await http.get("/ngsi-ld/v1/types", headers={**prato, **_link(url)})
        prato_list = await http.get("/ngsi-ld/v1/jsonldContexts", params=cached, headers=prato)
        livorno_list = await http.get("/ngsi-ld/v1/jsonldContexts", params=cached, headers=livorno)
    assert evicted.status_code == 204, evicted.text
    assert again.status_code == 200, again.text
    assert _RemoteContext.downloads == downloads + 1
    assert url in prato_list.json()
    assert url not in livorno_list.json()


async def test_only_a_tenant_that_uses_a_cached_context_may_reload_it(
    region: Region, context_site: str
) -> None:
    prato, livorno = _auth(region.keys["prato"], "prato"), _auth(region.keys["livorno"], "livorno")
    url = f"{context_site}/reload-{secrets.token_hex(4)}.jsonld"
    reload = {"reload": "true"}
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        used = await http.get("/ngsi-ld/v1/types", headers={**prato, **_link(url)})
        assert used.status_code == 200, used.text
        downloads = _RemoteContext.downloads
        foreign = await http.delete(_cached(url), params=reload, headers=livorno)
        after_foreign = _RemoteContext.downloads
        own = await http.delete(_cached(url), params=reload, headers=prato)
        listed = await http.get(
            "/ngsi-ld/v1/jsonldContexts", params={"kind": "Cached"}, headers=prato
        )
    assert foreign.status_code == 404, foreign.text
    assert after_foreign == downloads
    assert own.status_code == 204, own.text
    assert _RemoteContext.downloads == downloads + 1
    assert url in listed.json()


async def test_a_hosted_context_resolves_only_for_its_own_tenant(region: Region) -> None:
    prato, livorno = _auth(region.keys["prato"], "prato"), _auth(region.keys["livorno"], "livorno")
    entity = {"id": f"urn:ngsi-ld:Bin:{secrets.token_hex(4)}", "type": "Bin", "secret": 1}
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        added = await http.post("/ngsi-ld/v1/jsonldContexts", json=CONTEXT, headers=prato)
        assert added.status_code == 201, added.text
        url = region.url + added.headers["location"]
        own = await http.post("/ngsi-ld/v1/entities", json=entity, headers={**prato, **_link(url)})
        foreign = await http.post(
            "/ngsi-ld/v1/entities", json=entity, headers={**livorno, **_link(url)}
        )
        foreign_list = await http.get(
            "/ngsi-ld/v1/jsonldContexts", params={"kind": "Cached"}, headers=livorno
        )
    assert own.status_code == 201, own.text
    assert foreign.status_code == 504, foreign.text
    assert foreign.json()["type"].endswith("LdContextNotAvailable")
    assert url not in foreign_list.json()


async def test_a_suspended_tenant_s_keys_are_refused_everywhere(region: Region) -> None:
    pisa = region.keys["pisa"]
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        before = await http.get("/admin/tenants/pisa/audit", headers=_auth(pisa))
        assert before.status_code == 200, before.text
        suspended = await http.post(
            "/admin/tenants/pisa/suspend", headers=_auth(region.keys["region"])
        )
        assert suspended.status_code == 204, suspended.text
        refused = [
            await http.post(
                "/admin/tenants/pisa/keys", json={"role": "admin"}, headers=_auth(pisa)
            ),
            await http.get("/admin/tenants/pisa/audit", headers=_auth(pisa)),
            await http.get("/admin/tenants/pisa", headers=_auth(pisa)),
            await http.get("/ngsi-ld/v1/types", headers=_auth(pisa, "pisa")),
        ]
        by_region = await http.get(
            "/admin/tenants/pisa/audit", headers=_auth(region.keys["region"])
        )
    for answer in refused:
        assert answer.status_code == 403, (answer.request.url, answer.text)
        assert "suspended" in answer.json()["detail"]
    assert by_region.status_code == 200
    assert by_region.json()[0]["action"] == "tenant.suspended"


async def test_a_key_minted_in_the_development_profile_is_refused(region: Region) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        minted = await http.post(
            f"{region.dev_url}/admin/tenants/prato/keys", json={"role": "writer"}
        )
        assert minted.status_code == 201, minted.text
        used = await http.post(
            f"{region.url}/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:X:dev", "type": "X"},
            headers=_auth(minted.json()["key"], "prato"),
        )
    assert used.status_code == 401, used.text
    assert "contesto tenants key prato --role writer" in used.json()["detail"]


async def test_a_reader_key_may_query_by_post_but_not_write(region: Region) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        issued = await http.post(
            "/admin/tenants/prato/keys",
            json={"role": "reader"},
            headers=_auth(region.keys["prato"]),
        )
        reader = _auth(issued.json()["key"], "prato")
        query = await http.post(
            "/ngsi-ld/v1/entityOperations/query",
            json={"type": "Query", "entities": [{"type": "X"}]},
            headers=reader,
        )
        upsert = await http.post(
            "/ngsi-ld/v1/entityOperations/upsert",
            json=[{"id": "urn:ngsi-ld:X:r", "type": "X"}],
            headers=reader,
        )
    assert query.status_code == 200, query.text
    assert upsert.status_code == 403, upsert.text
