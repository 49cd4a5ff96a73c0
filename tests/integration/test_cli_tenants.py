"""`contesto tenants` and `contesto audit` against the real store: a regional operator's day."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from _servers import ThreadedServer
from typer.testing import CliRunner

from contesto._cli import app
from context_broker import BrokerSettings, create_app

pytestmark = pytest.mark.integration


def _invoke(store_url: str, prefix: str, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--mongo-url", store_url, "--prefix", prefix], input=input
    )
    return result.exit_code, result.output


def test_onboard_a_comune_once_then_suspend_audit_and_delete(
    store_url: str, tmp_path: Path
) -> None:
    prefix = f"c{secrets.token_hex(4)}"
    code, out = _invoke(store_url, prefix, "tenants", "onboard", "--comune", "Prato")
    assert code == 0, out
    assert "tenant prato onboarded" in out
    assert re.search(r"ctk_prato_[A-Za-z0-9_-]{43}", out)

    code, again = _invoke(store_url, prefix, "tenants", "onboard", "--comune", "100005")
    assert code == 0
    assert "already onboarded" in again
    assert "ctk_" not in again

    code, out = _invoke(store_url, prefix, "tenants", "show", "prato")
    shown = json.loads(out)
    assert shown["istat_code"] == "100005"
    assert shown["boundary"] == {"type": "MultiPolygon"}
    assert [k["role"] for k in shown["keys"]] == ["admin"]

    code, out = _invoke(store_url, prefix, "tenants", "onboard", "--comune", "Bologna")
    assert code == 1
    assert "Bologna" in out

    assert _invoke(store_url, prefix, "tenants", "suspend", "prato")[0] == 0
    code, out = _invoke(store_url, prefix, "audit", "prato")
    assert "tenant.suspended" in out
    assert "tenant.onboarded" in out

    export = tmp_path / "prato.jsonl"
    code, out = _invoke(
        store_url, prefix, "tenants", "delete", "prato", "--export", str(export), input="n\n"
    )
    assert code != 0
    assert _invoke(store_url, prefix, "tenants", "show", "prato")[0] == 0
    code, out = _invoke(
        store_url, prefix, "tenants", "delete", "prato", "--export", str(export), input="y\n"
    )
    assert code == 0, out
    assert export.exists()
    assert _invoke(store_url, prefix, "tenants", "show", "prato")[0] == 1
    assert "tenant.deleted" in _invoke(store_url, prefix, "audit", "prato")[1]


def test_list_shows_every_tenant_also_those_a_first_write_created(store_url: str) -> None:
    prefix = f"c{secrets.token_hex(4)}"
    assert _invoke(store_url, prefix, "tenants", "onboard", "--comune", "Prato")[0] == 0
    assert _invoke(store_url, prefix, "tenants", "suspend", "prato")[0] == 0
    settings = BrokerSettings(mongo_url=store_url, database_prefix=prefix)
    with ThreadedServer(create_app(settings)) as broker:
        created = httpx.post(
            f"{broker.url}/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:Thing:1", "type": "Thing"},
            headers={"NGSILD-Tenant": "Meteo_Lab"},
        )
    assert created.status_code == 201, created.text

    code, out = _invoke(store_url, prefix, "tenants", "list")
    assert code == 0, out
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in out.splitlines()
        if "prato" in line or "meteo" in line
    ]
    assert rows == [
        ["meteo_lab", "auto", "-", "-", "active"],
        ["prato", "comune", "Prato", "100005", "suspended"],
    ]


def test_a_tenant_name_outside_the_rule_is_a_usage_error(store_url: str) -> None:
    code, out = _invoke(store_url, "c0", "tenants", "suspend", "a" * 49)
    assert code == 2
    assert "the tenant name must be 1-48 letters" in out


def test_a_tenant_created_by_a_first_write_can_be_deleted(store_url: str, tmp_path: Path) -> None:
    prefix = f"c{secrets.token_hex(4)}"
    settings = BrokerSettings(mongo_url=store_url, database_prefix=prefix)
    with ThreadedServer(create_app(settings)) as broker:
        entities = f"{broker.url}/ngsi-ld/v1/entities"
        headers = {"NGSILD-Tenant": "lab"}
        thing = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}
        assert httpx.post(entities, json=thing, headers=headers).status_code == 201
        export = tmp_path / "lab.jsonl"
        code, out = _invoke(
            store_url, prefix, "tenants", "delete", "lab", "--yes", "--export", str(export)
        )
        assert code == 0, out
        assert "urn:ngsi-ld:Thing:1" in export.read_text()
        assert "lab" not in _invoke(store_url, prefix, "tenants", "list")[1]
        assert _invoke(store_url, prefix, "tenants", "delete", "lab", "--yes")[0] == 1


def test_a_sharing_rule_never_lets_personal_or_private_attributes_out(store_url: str) -> None:
    prefix = f"c{secrets.token_hex(4)}"
    code, out = _invoke(
        store_url,
        prefix,
        "tenants",
        "share",
        "publiacqua",
        "--name",
        "meters-to-comuni",
        "--types",
        "WaterConsumptionObserved",
        "--attrs",
        "waterConsumption,location,alarmTamper",
        "--profile",
        "toscana/WaterConsumptionObserved",
    )
    assert code == 0, out
    assert "(location) with comuni-it-lies-in" in out
    assert "never" in out
    assert "alarmTamper" in out.split("never", 1)[1]
    assert "waterConsumption" in out.split("never", 1)[1]
    assert "sharing.rule-set" in _invoke(store_url, prefix, "audit", "publiacqua")[1]

    code, out = _invoke(
        store_url,
        prefix,
        "tenants",
        "share",
        "publiacqua",
        "--name",
        "x",
        "--types",
        "Alert",
        "--attrs",
        "id",
        "--to",
        "comuni-it-lies-in",
    )
    assert code == 2
    assert "'id' is not an attribute" in out


def test_purge_removes_personal_data_past_its_retention_only(
    store_url: str, broker_url: str, broker_settings: BrokerSettings
) -> None:
    tenant = f"acqua{secrets.token_hex(3)}"
    api = broker_url + "/ngsi-ld/v1"
    old = datetime.now(UTC) - timedelta(days=800)
    recent = datetime.now(UTC) - timedelta(days=10)
    with httpx.Client(base_url=api, headers={"NGSILD-Tenant": tenant}) as http:
        for name, when in (("old", old), ("recent", recent)):
            created = http.post(
                "/entities",
                json={
                    "id": f"urn:ngsi-ld:WaterConsumptionObserved:{name}",
                    "type": "WaterConsumptionObserved",
                    "waterConsumption": {
                        "type": "Property",
                        "value": 1234,
                        "observedAt": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                    "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:m1"},
                },
            )
            assert created.status_code == 201, created.text
        code, out = _invoke(
            store_url,
            broker_settings.database_prefix,
            "tenants",
            "purge",
            tenant,
            "--profile",
            "toscana/WaterConsumptionObserved",
            "--broker-url",
            api,
        )
        assert code == 0, out
        assert "waterConsumption: removed from 1 entities" in out
        purged = http.get("/entities/urn:ngsi-ld:WaterConsumptionObserved:old").json()
        kept = http.get("/entities/urn:ngsi-ld:WaterConsumptionObserved:recent").json()
    assert "waterConsumption" not in purged
    assert "refDevice" in purged
    assert kept["waterConsumption"]["value"] == 1234
    log = _invoke(store_url, broker_settings.database_prefix, "audit", tenant)[1]
    assert "gdpr.purged" in log


def test_validation_mode_is_set_shown_audited_and_applied_by_the_broker(store_url: str) -> None:
    """`tenants validation`: Prato's models include the toscana air-quality profile, so under
    enforce a broker refuses an invalid AirQualityObserved with 400 (docs/regional.md)."""
    prefix = f"c{secrets.token_hex(4)}"
    assert _invoke(store_url, prefix, "tenants", "onboard", "--comune", "Prato")[0] == 0
    shown = json.loads(_invoke(store_url, prefix, "tenants", "show", "prato")[1])
    assert shown["api_validation"] == "off"
    code, out = _invoke(store_url, prefix, "tenants", "validation", "prato", "strict")
    assert code != 0
    code, out = _invoke(store_url, prefix, "tenants", "validation", "prato", "enforce")
    assert code == 0, out
    shown = json.loads(_invoke(store_url, prefix, "tenants", "show", "prato")[1])
    assert shown["api_validation"] == "enforce"
    assert "tenant.api_validation" in _invoke(store_url, prefix, "audit", "prato")[1]
    settings = BrokerSettings(mongo_url=store_url, database_prefix=prefix)
    with ThreadedServer(create_app(settings)) as broker:
        refused = httpx.post(
            f"{broker.url}/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:AirQualityObserved:po-1", "type": "AirQualityObserved"},
            headers={"NGSILD-Tenant": "prato"},
        )
    assert refused.status_code == 400, refused.text
    rules = {v["rule"] for v in refused.json()["violations"]}
    assert "profile.required" in rules or "schema.required" in rules
