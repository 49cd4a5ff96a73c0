"""Subscriptions in the regional profile: a reader key reads them, only a writer key creates,
updates and deletes them, keys of another tenant see nothing, and private endpoints are
refused."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from _servers import ThreadedServer

from context_broker import BrokerSettings, create_app
from regional_tenants import TenantRegistry, issue_key, onboard
from regional_tenants._tenants import Tenant
from store_edge import connect

pytestmark = pytest.mark.integration


def body(uri: str = "https://alerts.example.org/no2") -> dict[str, object]:
    return {
        "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}],
        "q": "no2>40",
        "notification": {"endpoint": {"uri": uri}},
    }


@pytest.fixture(scope="module")
def settings(store_url: str) -> BrokerSettings:
    return BrokerSettings(
        mongo_url=store_url,
        database_prefix=f"s{secrets.token_hex(4)}",
        auth_required=True,
        auto_create_tenants=False,
    )


@pytest.fixture(scope="module")
def url(settings: BrokerSettings) -> Iterator[str]:
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
async def keys(settings: BrokerSettings) -> AsyncIterator[dict[str, str]]:
    client = connect(settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{settings.database_prefix}__platform"])
        found = {}
        for name in ("firenze", "prato"):
            await onboard(
                registry, Tenant(name, "utility", name.title(), datetime.now(UTC)), actor="test"
            )
            for role in ("reader", "writer"):
                found[f"{name}-{role}"] = await issue_key(registry, name, role, actor="test")
    finally:
        await client.close()
    yield found


def auth(key: str, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "NGSILD-Tenant": tenant}


async def test_roles_and_isolation(url: str, keys: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=url + "/ngsi-ld/v1", timeout=30) as http:
        reader, writer = (
            auth(keys["firenze-reader"], "firenze"),
            auth(keys["firenze-writer"], "firenze"),
        )
        assert (await http.post("/subscriptions", json=body(), headers=reader)).status_code == 403
        created = await http.post("/subscriptions", json=body(), headers=writer)
        assert created.status_code == 201, created.text
        sub_id = created.headers["Location"].rsplit("/", 1)[1]
        assert (await http.get(f"/subscriptions/{sub_id}", headers=reader)).status_code == 200
        assert (await http.get("/subscriptions", headers=reader)).status_code == 200
        patch = {"isActive": False}
        assert (
            await http.patch(f"/subscriptions/{sub_id}", json=patch, headers=reader)
        ).status_code == 403
        assert (await http.delete(f"/subscriptions/{sub_id}", headers=reader)).status_code == 403
        # Another tenant's keys: refused in Firenze, and Prato's own tenant holds nothing.
        other = auth(keys["prato-writer"], "firenze")
        assert (await http.get(f"/subscriptions/{sub_id}", headers=other)).status_code == 403
        prato = auth(keys["prato-reader"], "prato")
        assert (await http.get("/subscriptions", headers=prato)).json() == []
        assert (await http.get(f"/subscriptions/{sub_id}", headers=prato)).status_code == 404
        assert (await http.get("/subscriptions")).status_code == 401
        assert (
            await http.patch(f"/subscriptions/{sub_id}", json=patch, headers=writer)
        ).status_code == 204
        assert (await http.delete(f"/subscriptions/{sub_id}", headers=writer)).status_code == 204


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/n",
        "http://localhost/n",
        "https://10.1.2.3/n",
        "http://192.168.1.1/n",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/n",
        "mqtt://172.16.0.5:1883/alerts",
    ],
)
async def test_private_endpoints_are_refused(url: str, keys: dict[str, str], uri: str) -> None:
    async with httpx.AsyncClient(base_url=url + "/ngsi-ld/v1", timeout=30) as http:
        headers = auth(keys["firenze-writer"], "firenze")
        refused = await http.post("/subscriptions", json=body(uri), headers=headers)
        assert refused.status_code == 400, refused.text
        assert "notification.endpoint.uri" in refused.json()["detail"]
        created = await http.post("/subscriptions", json=body(), headers=headers)
        sub_id = created.headers["Location"].rsplit("/", 1)[1]
        moved = await http.patch(
            f"/subscriptions/{sub_id}",
            json={"notification": {"endpoint": {"uri": uri}}},
            headers=headers,
        )
        assert moved.status_code == 400, moved.text


def test_private_endpoint_setting_follows_the_profile() -> None:
    assert BrokerSettings().private_endpoints_allowed()
    assert not BrokerSettings(auth_required=True).private_endpoints_allowed()
    assert BrokerSettings(
        auth_required=True, subscription_private_endpoints=True
    ).private_endpoints_allowed()
    assert not BrokerSettings(subscription_private_endpoints=False).private_endpoints_allowed()
