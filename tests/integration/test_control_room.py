"""The control room page in a real browser (Debian's chromium, driven by Playwright) on a
real broker in the regional profile: sign in with a key, the comune and its entities on the
map, their values on click, a change made over HTTP on the page within 2 s, a wrong key
refused, and a tenant that never sees another's entities, on the page or its live stream."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from _servers import ThreadedServer
from playwright.async_api import Browser, Page, async_playwright, expect

from context_broker import BrokerSettings, create_app
from regional_tenants import REGION_TENANT, TenantRegistry, issue_key, onboard
from regional_tenants._tenants import Tenant
from store_edge import connect

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "control-room.png"
AIR = "urn:ngsi-ld:AirQualityObserved:firenze-santa-croce"
PARKING = "urn:ngsi-ld:ParkingSpot:firenze-pitti-1"
ALERT = "urn:ngsi-ld:Alert:roadworks-1"
PRATO_AIR = "urn:ngsi-ld:AirQualityObserved:prato-roma"
WITHIN_S = 2.0


@dataclass(frozen=True)
class Room:
    url: str
    keys: dict[str, str]  # "<tenant>:<role>" -> plain key


def _auth(key: str, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "NGSILD-Tenant": tenant}


def _point(lon: float, lat: float) -> dict[str, object]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _entities(observed: str) -> dict[str, list[dict[str, object]]]:
    def measured(value: float) -> dict[str, object]:
        return {"type": "Property", "value": value, "unitCode": "GQ", "observedAt": observed}

    return {
        "firenze": [
            {
                "id": AIR,
                "type": "AirQualityObserved",
                "no2": measured(31.0),
                "pm10": measured(22.0),
                "location": _point(11.2622, 43.7686),
            },
            {
                "id": PARKING,
                "type": "ParkingSpot",
                "status": {"type": "Property", "value": "free", "observedAt": observed},
                "location": _point(11.2500, 43.7650),
            },
            {
                "id": ALERT,
                "type": "Alert",
                "category": {"type": "Property", "value": "traffic"},
                "subCategory": {"type": "Property", "value": "roadWorks"},
                "severity": {"type": "Property", "value": "medium"},
                "dateIssued": {"type": "Property", "value": observed},
                "sharedBy": {"type": "Property", "value": "publiacqua"},
                "location": _point(11.2550, 43.7750),
            },
        ],
        "prato": [
            {
                "id": PRATO_AIR,
                "type": "AirQualityObserved",
                "no2": measured(18.0),
                "location": _point(11.0966, 43.8777),
            }
        ],
    }


@pytest.fixture(scope="module")
def settings(store_url: str) -> BrokerSettings:
    return BrokerSettings(
        mongo_url=store_url,
        database_prefix=f"cr{secrets.token_hex(4)}",
        auth_required=True,
        auto_create_tenants=False,
    )


@pytest.fixture(scope="module")
def room_url(settings: BrokerSettings) -> Iterator[str]:
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
async def room(settings: BrokerSettings, room_url: str) -> Room:
    """Firenze and Prato onboarded, a reader and an admin key of each, and their entities."""
    client = connect(settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{settings.database_prefix}__platform"])
        region = Tenant(REGION_TENANT, "region", "Regione Toscana", datetime.now(UTC))
        await onboard(registry, region, actor="test")
        region_key = await issue_key(registry, REGION_TENANT, "region-admin", actor="test")
    finally:
        await client.close()
    observed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    keys = {}
    async with httpx.AsyncClient(base_url=room_url, timeout=30) as http:
        for comune, entities in _entities(observed).items():
            answer = await http.post(
                "/admin/tenants",
                json={"comune": comune},
                headers={"Authorization": f"Bearer {region_key}"},
            )
            assert answer.status_code == 201, answer.text
            admin = answer.json()["adminKey"]
            reader = await http.post(
                f"/admin/tenants/{comune}/keys",
                json={"role": "reader"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert reader.status_code == 201, reader.text
            keys[f"{comune}:admin"] = admin
            keys[f"{comune}:reader"] = reader.json()["key"]
            for entity in entities:
                created = await http.post(
                    "/ngsi-ld/v1/entities", json=entity, headers=_auth(admin, comune)
                )
                assert created.status_code == 201, created.text
    return Room(room_url, keys)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One chromium for the module: the system's, never a downloaded one."""
    assert shutil.which("chromium"), "install Debian's chromium (.ci/run does)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(5000)
    opened = await context.new_page()
    yield opened
    await context.close()


async def _sign_in(page: Page, room: Room, key: str) -> None:
    await page.goto(room.url + "/control-room/")
    await page.fill("#key", key)
    await page.click("#sign-in-form button[type=submit]")


async def test_a_reader_key_shows_the_comune_its_entities_values_and_alerts(
    room: Room, page: Page
) -> None:
    await _sign_in(page, room, room.keys["firenze:reader"])
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(page.locator("path.comune-boundary")).to_have_count(1)
    for entity_id in (AIR, PARKING, ALERT):
        await expect(
            page.locator(f".leaflet-marker-icon[data-entity-id='{entity_id}']")
        ).to_be_visible()
    await expect(
        page.locator(f".leaflet-marker-icon[data-entity-id='{PARKING}']")
    ).to_have_attribute("data-level", "good")
    alert = page.locator(f"#alerts-list button[data-entity-id='{ALERT}']")
    await expect(alert).to_contain_text("medium")
    await expect(alert).to_contain_text("traffic / roadWorks")
    await expect(alert).to_contain_text("condivisa da publiacqua")

    await page.locator(f".leaflet-marker-icon[data-entity-id='{AIR}']").click()
    no2 = page.locator("#details-body dd[data-attribute='no2']")
    await expect(no2).to_contain_text("31 µg/m³")
    await expect(no2).to_contain_text("5 minuti fa")
    await page.screenshot(path=str(SCREENSHOT))

    await page.click("#language")
    await expect(page.locator("h1")).to_have_text("Control room")
    await expect(no2).to_contain_text("5 minutes ago")
    await expect(page.locator("#status")).to_have_text("Online")


async def test_a_patch_made_over_http_appears_on_the_page_within_2_s(
    room: Room, page: Page
) -> None:
    await _sign_in(page, room, room.keys["firenze:reader"])
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await page.locator(f".leaflet-marker-icon[data-entity-id='{AIR}']").click()
    no2 = page.locator("#details-body dd[data-attribute='no2']")
    await expect(no2).to_contain_text("µg/m³")
    async with httpx.AsyncClient(base_url=room.url, timeout=10) as http:
        started = time.monotonic()
        patched = await http.patch(
            f"/ngsi-ld/v1/entities/{AIR}/attrs/no2",
            json={"value": 250.0},
            headers=_auth(room.keys["firenze:admin"], "firenze"),
        )
        assert patched.status_code == 204, patched.text
        await expect(no2).to_contain_text("250 µg/m³", timeout=WITHIN_S * 1000)
        await expect(
            page.locator(f".leaflet-marker-icon[data-entity-id='{AIR}']")
        ).to_have_attribute("data-level", "bad", timeout=WITHIN_S * 1000)
        assert time.monotonic() - started < WITHIN_S


async def test_a_wrong_key_is_refused_and_the_map_stays_closed(room: Room, page: Page) -> None:
    await _sign_in(page, room, "ctk_firenze_" + "A" * 43)
    await expect(page.locator("#sign-in-error")).to_have_text("Chiave non valida per questo ente.")
    await expect(page.locator("#room")).to_be_hidden()
    # A real key of Prato names Prato: asked for Firenze, it is refused too.
    await page.fill("#tenant", "firenze")
    await page.fill("#key", room.keys["prato:reader"])
    await page.click("#sign-in-form button[type=submit]")
    await expect(page.locator("#sign-in-error")).to_have_text("Chiave non valida per questo ente.")
    await expect(page.locator("#room")).to_be_hidden()


async def test_prato_never_sees_the_entities_or_changes_of_firenze(room: Room, page: Page) -> None:
    await _sign_in(page, room, room.keys["prato:reader"])
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(
        page.locator(f".leaflet-marker-icon[data-entity-id='{PRATO_AIR}']")
    ).to_be_visible()
    async with httpx.AsyncClient(base_url=room.url, timeout=10) as http:
        patched = await http.patch(
            f"/ngsi-ld/v1/entities/{AIR}/attrs/no2",
            json={"value": 12.0},
            headers=_auth(room.keys["firenze:admin"], "firenze"),
        )
        assert patched.status_code == 204
    await page.wait_for_timeout(500)
    assert await page.locator(".leaflet-marker-icon").count() == 1
    assert await page.locator("#alerts-list li").count() == 0


async def _events(http: httpx.AsyncClient, key: str, tenant: str) -> httpx.Response:
    request = http.build_request(
        "GET",
        "/control-room/api/events",
        headers=_auth(key, tenant) | {"Accept": "text/event-stream"},
    )
    return await http.send(request, stream=True)


async def _next_event(lines: AsyncIterator[str], within_s: float) -> tuple[str, dict[str, object]]:
    async def read() -> tuple[str, dict[str, object]]:
        name, data = "", ""
        async for line in lines:
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and name:
                return name, json.loads(data)
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), within_s)


async def test_the_live_stream_names_the_changed_entities_of_the_keys_tenant_only(
    room: Room,
) -> None:
    """Server-Sent Events: the same key and tenant rules as the NGSI-LD API (a reader key
    of the tenant; another tenant's key 403, no key 401)."""
    async with httpx.AsyncClient(base_url=room.url, timeout=10) as http:
        refused = await _events(http, room.keys["prato:reader"], "firenze")
        assert refused.status_code == 403
        await refused.aclose()
        anonymous = await http.get("/control-room/api/events", headers={"NGSILD-Tenant": "firenze"})
        assert anonymous.status_code == 401
        florence = await _events(http, room.keys["firenze:reader"], "firenze")
        prato = await _events(http, room.keys["prato:reader"], "prato")
        try:
            assert florence.status_code == 200
            assert florence.headers["content-type"].startswith("text/event-stream")
            florence_lines, prato_lines = florence.aiter_lines(), prato.aiter_lines()
            assert (await _next_event(florence_lines, WITHIN_S))[0] == "ready"
            assert (await _next_event(prato_lines, WITHIN_S))[0] == "ready"
            patched = await http.patch(
                f"/ngsi-ld/v1/entities/{PARKING}/attrs/status",
                json={"value": "occupied"},
                headers=_auth(room.keys["firenze:admin"], "firenze"),
            )
            assert patched.status_code == 204
            name, body = await _next_event(florence_lines, WITHIN_S)
            assert (name, body) == (
                "changes",
                {"changes": [{"id": PARKING, "deleted": False}], "lost": False},
            )
            with pytest.raises(TimeoutError):
                await _next_event(prato_lines, 0.5)
        finally:
            await florence.aclose()
            await prato.aclose()


async def test_the_boundary_route_answers_the_keys_own_comune_only(room: Room) -> None:
    async with httpx.AsyncClient(base_url=room.url, timeout=10) as http:
        own = await http.get(
            "/control-room/api/boundary", headers=_auth(room.keys["prato:reader"], "prato")
        )
        other = await http.get(
            "/control-room/api/boundary", headers=_auth(room.keys["prato:reader"], "firenze")
        )
        tenants = await http.get("/control-room/api/tenants")
        config = await http.get("/control-room/api/config")
    assert own.status_code == 200
    assert own.headers["content-type"] == "application/geo+json"
    assert own.json()["geometry"]["type"] == "MultiPolygon"
    assert own.json()["properties"]["name"] == "Prato"
    assert other.status_code == 403
    # The tenant picker is the dev profile's: the regional one lists no tenant to anyone.
    assert tenants.status_code == 403
    # No tile server unless one is set: the map is the comune's boundary, offline.
    assert config.json() == {
        "profile": "regional",
        "apiPath": "/ngsi-ld/v1",
        "tileUrl": None,
        "resyncS": 10.0,
    }


@pytest.fixture(scope="module")
def dev_settings(store_url: str) -> BrokerSettings:
    """The dev profile (no keys), the page at a path of its own, reading everything again
    every second."""
    return BrokerSettings(
        mongo_url=store_url,
        database_prefix=f"cd{secrets.token_hex(4)}",
        control_room_path="/sala-operativa/",
        control_room_resync_s=1,
    )


@pytest.fixture(scope="module")
def two_processes(dev_settings: BrokerSettings) -> Iterator[tuple[str, str]]:
    """Two API applications on one store, as `contesto up --workers 2` runs them."""
    with (
        ThreadedServer(create_app(dev_settings)) as first,
        ThreadedServer(create_app(dev_settings)) as second,
    ):
        yield first.url, second.url


async def test_the_dev_profile_picks_a_tenant_and_sees_changes_made_through_another_process(
    two_processes: tuple[str, str], page: Page
) -> None:
    """A change made through another API process reaches the page by its periodic read
    (CONTESTO_CONTROL_ROOM_RESYNC_S), not by the live stream of the process it follows."""
    shown, other = two_processes
    sensor = "urn:ngsi-ld:AirQualityObserved:livorno-1"
    async with httpx.AsyncClient(base_url=other, timeout=10) as http:
        created = await http.post(
            "/ngsi-ld/v1/entities",
            json={"id": sensor, "type": "AirQualityObserved", "location": _point(10.31, 43.55)},
            headers={"NGSILD-Tenant": "livorno"},
        )
        assert created.status_code == 201, created.text
        await page.goto(shown + "/sala-operativa/")
        await expect(page.locator("#key")).to_be_hidden()
        await expect(page.locator("#tenant-list option[value='livorno']")).to_have_count(1)
        await page.fill("#tenant", "livorno")
        await page.click("#sign-in-form button[type=submit]")
        await expect(page.locator("path.comune-boundary")).to_have_count(1)
        marker = page.locator(f".leaflet-marker-icon[data-entity-id='{sensor}']")
        await expect(marker).to_have_attribute("data-level", "other")
        appended = await http.post(
            f"/ngsi-ld/v1/entities/{sensor}/attrs",
            json={"pm10": {"type": "Property", "value": 80}},
            headers={"NGSILD-Tenant": "livorno"},
        )
        assert appended.status_code == 204, appended.text
        await expect(marker).to_have_attribute("data-level", "bad", timeout=3000)


async def test_a_writer_creates_an_alert_by_clicking_the_map_and_a_reader_cannot(
    room: Room, page: Page, browser: Browser
) -> None:
    await _sign_in(page, room, room.keys["firenze:admin"])
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await page.click("#new-alert")
    await page.locator("#map").click(position={"x": 300, "y": 300})
    await page.select_option("#alert-category", "environment")
    await page.fill("#alert-subcategory", "waterPollution")
    await page.select_option("#alert-severity", "high")
    await page.fill("#alert-description", "Perdita in via Roma")
    await page.click("#alert-form button[type=submit]")
    newest = page.locator("#alerts-list li").first
    await expect(newest).to_contain_text("high environment / waterPollution")
    created = await newest.locator("button").get_attribute("data-entity-id")
    assert created is not None and created.startswith("urn:ngsi-ld:Alert:firenze-")
    async with httpx.AsyncClient(base_url=room.url, timeout=10) as http:
        stored = await http.get(
            f"/ngsi-ld/v1/entities/{created}",
            params={"options": "keyValues"},
            headers=_auth(room.keys["firenze:reader"], "firenze"),
        )
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert (body["category"], body["severity"]) == ("environment", "high")
    assert body["description"] == "Perdita in via Roma"
    assert body["location"]["type"] == "Point"
    await expect(page.locator(f".leaflet-marker-icon[data-entity-id='{created}']")).to_be_visible()

    await page.select_option("#filter-severity", "high")
    await expect(page.locator("#alerts-list li")).to_have_count(1)
    await page.select_option("#filter-severity", "")
    await page.select_option("#filter-category", "traffic")
    await expect(page.locator("#alerts-list li")).to_have_count(1)
    await expect(page.locator("#alerts-list li")).to_contain_text("roadWorks")

    reader = await browser.new_page()
    try:
        await _sign_in(reader, room, room.keys["firenze:reader"])
        await expect(reader.locator("#status")).to_have_attribute("data-state", "online")
        await reader.click("#new-alert")
        # Beside the writer's alert: a click on a marker selects it and places nothing.
        await reader.locator("#map").click(position={"x": 250, "y": 450})
        await reader.click("#alert-form button[type=submit]")
        await expect(reader.locator("#alert-error")).to_contain_text("chiave writer")
    finally:
        await reader.close()


async def test_the_page_shows_when_it_is_offline_and_reconnects_by_itself(
    room: Room, page: Page
) -> None:
    await _sign_in(page, room, room.keys["prato:reader"])
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "online")
    await page.context.set_offline(True)
    await expect(status).to_have_attribute("data-state", "offline")
    await expect(status).to_have_text("Non in linea")
    await page.context.set_offline(False)
    await expect(status).to_have_attribute("data-state", "online", timeout=3000)
