"""The landing page at `/` and `GET /version` over real HTTP: what an operator or a browser
sees first, without a key, and never a tenant's name in the regional profile."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from _servers import ThreadedServer

from contesto import EmbeddedStore
from context_broker import BrokerSettings, create_app
from regional_tenants import TenantRegistry, onboard
from regional_tenants._tenants import Tenant
from store_edge import connect

pytestmark = pytest.mark.integration

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def http(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=broker_url, timeout=10.0) as client:
        yield client


async def test_version_names_the_product_the_spec_python_and_the_store(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get("/version")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["product"] == "Contesto"
    assert body["version"] == importlib.metadata.version("contesto")
    assert body["ngsiLdVersion"] == "1.9"
    assert body["python"] == platform.python_version()
    assert isinstance(body["storeVersion"], str) and body["storeVersion"]


async def test_the_landing_page_is_json_for_a_program_and_its_links_work(
    http: httpx.AsyncClient,
) -> None:
    tenant = f"landing{secrets.token_hex(3)}"
    created = await http.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:ngsi-ld:Probe:1", "type": "Probe"},
        headers={"NGSILD-Tenant": tenant},
    )
    assert created.status_code == 201
    answer = await http.get("/", headers={"Accept": "application/json"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["product"] == "Contesto"
    assert body["profile"] == "dev"
    assert isinstance(body["tenants"], int) and body["tenants"] >= 1
    links = body["links"]
    assert links["api"] == "/ngsi-ld/v1"
    assert links["docs"] == "/docs"
    for name in ("docs", "openapi", "version"):
        assert (await http.get(links[name])).status_code == 200, name
    entities = await http.get(
        links["api"] + "/entities", params={"type": "Probe"}, headers={"NGSILD-Tenant": tenant}
    )
    assert [entity["id"] for entity in entities.json()] == ["urn:ngsi-ld:Probe:1"]
    # A page that exists only when its part of the product runs is linked only then.
    for name, path in links.items():
        if name != "api":
            assert (await http.get(path)).status_code != 404, name


async def test_a_browser_gets_an_html_page_with_the_same_links(http: httpx.AsyncClient) -> None:
    answer = await http.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "<h1>Contesto" in page
    assert importlib.metadata.version("contesto") in page
    assert 'href="/docs"' in page and 'href="/version"' in page
    assert "<code>/ngsi-ld/v1</code>" in page


@pytest.fixture(scope="module")
def regional(store_url: str) -> Iterator[tuple[BrokerSettings, str]]:
    settings = BrokerSettings(
        mongo_url=store_url,
        database_prefix=f"l{secrets.token_hex(4)}",
        auth_required=True,
        auto_create_tenants=False,
    )
    with ThreadedServer(create_app(settings)) as server:
        yield settings, server.url


async def test_the_regional_profile_answers_without_a_key_and_names_no_tenant(
    regional: tuple[BrokerSettings, str],
) -> None:
    settings, url = regional
    tenant = f"comune{secrets.token_hex(4)}"
    client = connect(settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{settings.database_prefix}__platform"])
        await onboard(registry, Tenant(tenant, "utility", "Probe", datetime.now(UTC)), actor="t")
    finally:
        await client.close()
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        # The API itself still asks for a key, so the profile is really on.
        assert (await http.get("/ngsi-ld/v1/types")).status_code == 401
        for path, accept in (("/", "application/json"), ("/", BROWSER_ACCEPT), ("/version", "")):
            answer = await http.get(path, headers={"Accept": accept})
            assert answer.status_code == 200, path
            assert tenant not in answer.text, path
        body = (await http.get("/", headers={"Accept": "application/json"})).json()
        assert body["profile"] == "regional"
        assert body["tenants"] is None


def test_neither_page_waits_on_a_store_that_is_gone(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db", log_path=tmp_path / "secantus.log")
    store.start()
    try:
        settings = BrokerSettings(mongo_url=store.url, database_prefix="gone")
        with ThreadedServer(create_app(settings)) as server:
            assert httpx.get(f"{server.url}/version", timeout=10).json()["storeVersion"]
            store.stop()
            for path in ("/version", "/"):
                started = time.monotonic()
                answer = httpx.get(f"{server.url}{path}", timeout=10)
                took = time.monotonic() - started
                assert answer.status_code == 200, path
                assert answer.json()["storeVersion"] is None, path
                assert took < 1.5, f"{path} took {took:.2f} s"
            assert answer.json()["tenants"] is None
    finally:
        store.stop()


def test_the_documented_version_example_runs(broker_url: str) -> None:
    """docs/operations.md, "What runs here": the curl example, and the answer it shows."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = text.split("## What runs here", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    command, shown = block.split("\n# ", 1)
    done = subprocess.run(
        ["bash", "-c", command.replace("http://127.0.0.1:1026", broker_url)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer, documented = json.loads(done.stdout), json.loads(shown)
    assert answer.keys() == documented.keys()
    for member in ("product", "version", "ngsiLdVersion"):
        assert answer[member] == documented[member], member
