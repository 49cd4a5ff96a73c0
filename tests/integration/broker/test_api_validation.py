"""API-side validation of a tenant's profile types (off, warn, enforce), over real HTTP.

A broker may refuse a write it finds invalid with 400 BadRequestData (ETSI GS CIM 009
V1.8.1 clause 6.3.2 and Table 5.5.2-1); Batch Create answers 207 with a
BatchOperationResult whose errors name each refused entity (clause 6.14.3.1, 5.2.16).
Which data a profile covers is Contesto's own policy: see docs/regional.md.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

_AIR = "AirQualityObserved"


def _air(entity_id: str, pm10: float) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": _AIR,
        "dateObserved": {"type": "Property", "value": "2026-01-01T00:00:00Z"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, 43.8]}},
        "pm10": {"type": "Property", "value": pm10, "unitCode": "GQ"},
        "pm25": {"type": "Property", "value": 10, "unitCode": "GQ"},
        "no2": {"type": "Property", "value": 30, "unitCode": "GQ"},
    }


class Tenant:
    """A utility tenant whose models are the toscana air-quality profile."""

    def __init__(self, root: httpx.AsyncClient, slug: str) -> None:
        self.root = root
        self.slug = slug
        self.api = {"NGSILD-Tenant": slug}

    async def mode(self, mode: str) -> None:
        answer = await self.root.put(
            f"/admin/tenants/{self.slug}/api-validation", json={"apiValidation": mode}
        )
        assert answer.status_code == 200, answer.text

    async def post(self, path: str, body: object) -> httpx.Response:
        return await self.root.post("/ngsi-ld/v1" + path, json=body, headers=self.api)

    async def get(self, entity_id: str) -> httpx.Response:
        return await self.root.get(f"/ngsi-ld/v1/entities/{entity_id}", headers=self.api)


@pytest.fixture
async def onboarded(broker_url: str) -> AsyncIterator[Tenant]:
    slug = f"aq{secrets.token_hex(5)}"
    async with httpx.AsyncClient(base_url=broker_url, timeout=30.0) as root:
        answer = await root.post(
            "/admin/tenants",
            json={"slug": slug, "kind": "utility", "models": ["toscana/AirQualityObserved"]},
        )
        assert answer.status_code == 201, answer.text
        yield Tenant(root, slug)


def _id() -> str:
    return f"urn:ngsi-ld:{_AIR}:{secrets.token_hex(4)}"


async def test_off_by_default_accepts_an_invalid_entity(onboarded: Tenant) -> None:
    """The default, `off`, stores what the API accepted before (clause 5.6.1)."""
    shown = await onboarded.root.get(f"/admin/tenants/{onboarded.slug}")
    assert shown.json()["api_validation"] == "off"
    answer = await onboarded.post("/entities", _air(_id(), 5000))
    assert answer.status_code == 201, answer.text
    assert "contesto-validation-warning" not in answer.headers


async def test_warn_stores_and_reports_the_violations(onboarded: Tenant) -> None:
    """`warn`: the write succeeds (201, clause 6.4.3.1) and its violations are reported in a
    header, in /metrics and in the tenant's audit log."""
    await onboarded.mode("warn")
    entity_id = _id()
    answer = await onboarded.post("/entities", _air(entity_id, 5000))
    assert answer.status_code == 201, answer.text
    warning = answer.headers["contesto-validation-warning"]
    assert entity_id in warning and "$.pm10.value [profile.maximum]" in warning
    assert (await onboarded.get(entity_id)).json()["pm10"]["value"] == 5000
    metrics = (await onboarded.root.get("/metrics")).text
    assert f'contesto_api_validation_violations_total{{mode="warn",tenant="{onboarded.slug}"}}' in (
        metrics
    )
    audit = (await onboarded.root.get(f"/admin/tenants/{onboarded.slug}/audit")).json()
    actions = [entry["action"] for entry in audit]
    assert actions[0] == "entity.validation_warned"
    assert "tenant.api_validation" in actions
    assert audit[0]["detail"]["entity"] == entity_id


async def test_enforce_refuses_with_the_violations_and_stores_nothing(onboarded: Tenant) -> None:
    """`enforce`: 400 BadRequestData (clause 6.3.2) listing path, rule and hint; no entity."""
    await onboarded.mode("enforce")
    entity_id = _id()
    answer = await onboarded.post("/entities", _air(entity_id, 5000))
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    [violation] = problem["violations"]
    assert violation["path"] == "$.pm10.value"
    assert violation["rule"] == "profile.maximum"
    assert "PM10" in violation["hint"]
    assert (await onboarded.get(entity_id)).status_code == 404


async def test_enforce_checks_the_entity_as_it_will_be_after_a_partial_update(
    onboarded: Tenant,
) -> None:
    """Partial Attribute Update (clause 5.6.4) and Merge Entity (clause 5.6.17) are checked
    on the merged entity: a bad value is refused and the stored one kept."""
    await onboarded.mode("enforce")
    entity_id = _id()
    assert (await onboarded.post("/entities", _air(entity_id, 20))).status_code == 201
    path = f"/ngsi-ld/v1/entities/{entity_id}"
    patched = await onboarded.root.patch(
        path + "/attrs/pm10", json={"type": "Property", "value": 5000}, headers=onboarded.api
    )
    merged = await onboarded.root.patch(
        path, json={"no2": {"type": "Property", "value": -1}}, headers=onboarded.api
    )
    fine = await onboarded.root.patch(
        path + "/attrs/pm10", json={"type": "Property", "value": 40}, headers=onboarded.api
    )
    assert patched.status_code == 400, patched.text
    assert patched.json()["violations"][0]["path"] == "$.pm10.value"
    assert merged.status_code == 400, merged.text
    assert merged.json()["violations"][0]["path"] == "$.no2.value"
    assert fine.status_code == 204, fine.text
    stored = (await onboarded.get(entity_id)).json()
    assert (stored["pm10"]["value"], stored["no2"]["value"]) == (40, 30)


async def test_enforce_batch_answers_207_with_the_bad_entity_only(onboarded: Tenant) -> None:
    """Batch Create (clause 5.6.7): 207 with the refused entity in `errors`, the rest stored."""
    await onboarded.mode("enforce")
    good, bad = _id(), _id()
    answer = await onboarded.post("/entityOperations/create", [_air(good, 20), _air(bad, 5000)])
    assert answer.status_code == 207, answer.text
    result = answer.json()
    assert result["success"] == [good]
    [error] = result["errors"]
    assert error["entityId"] == bad
    assert error["error"]["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert "$.pm10.value [profile.maximum]" in error["error"]["detail"]
    assert (await onboarded.get(bad)).status_code == 404


async def test_a_type_the_profile_does_not_cover_is_never_validated(onboarded: Tenant) -> None:
    await onboarded.mode("enforce")
    other = {
        "id": "urn:ngsi-ld:Bench:1",
        "type": "Bench",
        "pm10": {"type": "Property", "value": -5},
    }
    answer = await onboarded.post("/entities", other)
    assert answer.status_code == 201, answer.text


async def test_an_unknown_mode_is_refused(onboarded: Tenant) -> None:
    answer = await onboarded.root.put(
        f"/admin/tenants/{onboarded.slug}/api-validation", json={"apiValidation": "strict"}
    )
    assert answer.status_code == 400
