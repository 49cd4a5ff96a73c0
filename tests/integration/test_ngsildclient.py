"""ngsildclient 0.5.2 (the FIWARE community Python client) works against the broker.

The client runs in its own virtualenv (`make ngsildclient-venv`), never in the project's:
the scenario in ngsildclient_scenario.py is run as a subprocess against the test broker, and
what it reports and what the broker then holds are checked here. docs/clients.md lists the
places where ngsildclient departs from the spec.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PYTHON = ROOT / ".venv-ngsildclient" / "bin" / "python"
SCENARIO = Path(__file__).with_name("ngsildclient_scenario.py")
NGSI_LD_PATH = "/ngsi-ld/v1"
SCENARIO_TIMEOUT_S = 120.0


def station(number: int) -> str:
    return f"urn:ngsi-ld:AirQualityObserved:prato-{number}"


@pytest.fixture(scope="module")
def tenant() -> str:
    return f"ngsildclient{secrets.token_hex(3)}"


def run_scenario(broker_url: str, tenant: str, mode: str = "all") -> dict[str, Any]:
    """Run ngsildclient_scenario.py in ngsildclient's virtualenv; what its steps returned."""
    if not CLIENT_PYTHON.exists():
        pytest.fail(
            f"ngsildclient's virtualenv is missing ({CLIENT_PYTHON}): run `make ngsildclient-venv`",
            pytrace=False,
        )
    completed = subprocess.run(
        [str(CLIENT_PYTHON), str(SCENARIO), broker_url, tenant, mode],
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, f"the ngsildclient scenario failed:\n{completed.stderr}"
    results: dict[str, Any] = json.loads(completed.stdout)
    return results


@pytest.fixture(scope="module")
def outcome(broker_url: str, tenant: str) -> dict[str, Any]:
    """What each step of the ngsildclient scenario returned, run once for the module."""
    return run_scenario(broker_url, tenant)


@pytest.fixture
def http(broker_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broker_url + NGSI_LD_PATH, timeout=30.0) as client:
        yield client


def test_create_works_with_the_clients_own_url(broker_url: str, tenant: str) -> None:
    assert run_scenario(broker_url, f"{tenant}-shipped", "create-as-shipped") == {"create": True}


def test_the_client_connects_and_finds_no_vendor_it_knows(outcome: dict[str, Any]) -> None:
    assert outcome["connected"] is True
    assert outcome["vendor"] == [None, "N/A"]


def test_create_then_retrieve_returns_the_entity_with_its_context(outcome: dict[str, Any]) -> None:
    assert outcome["create"] is True
    assert outcome["exists"] is True
    entity = outcome["retrieve"]
    assert entity["id"] == station(1)
    assert entity["type"] == "AirQualityObserved"
    assert entity["pm10"] == {
        "type": "Property",
        "value": 21.0,
        "observedAt": "2026-01-31T12:00:00Z",
        "unitCode": "GQ",
    }
    assert entity["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:prato-1"}
    assert "@context" in entity


def test_a_batch_update_changes_one_attribute_and_keeps_the_others(
    outcome: dict[str, Any],
) -> None:
    assert outcome["update_attribute"] == {"ok": True, "success": [station(1)], "errors": []}
    entity = outcome["after_update_attribute"]
    assert entity["pm10"] == {"type": "Property", "value": 27.5, "unitCode": "GQ"}
    assert entity["no2"]["value"] == 31.5
    assert entity["refDevice"]["object"] == "urn:ngsi-ld:Device:prato-1"


def test_update_of_a_whole_entity_replaces_it(outcome: dict[str, Any]) -> None:
    assert outcome["update_entity"] is True
    assert outcome["after_update_entity"]["no2"]["value"] == 35.0
    assert outcome["after_update_entity"]["pm10"]["value"] == 21.0


def test_a_batch_upsert_reports_the_entities_it_created(outcome: dict[str, Any]) -> None:
    # 201 lists the ids created (clause 6.15.3.1); ngsildclient takes them for all successes,
    # so prato-1, which existed and was replaced, is not in its list.
    assert outcome["upsert"] == {
        "ok": True,
        "success": [station(2), station(3), station(4)],
        "errors": [],
    }


def test_a_query_by_type_pages_through_the_tenant(outcome: dict[str, Any]) -> None:
    assert outcome["count"] == 4
    assert outcome["query"] == [station(n) for n in (1, 2, 3, 4)]


def test_single_and_batch_deletes(outcome: dict[str, Any]) -> None:
    assert outcome["delete"] is True
    assert outcome["batch_delete"] == {"ok": True, "success": [station(2)], "errors": []}
    assert outcome["exists_after_delete"] is False
    remaining = outcome["query_after_delete"]
    assert sorted(remaining) == [station(3), station(4)]
    assert remaining[station(3)]["pm10"]["value"] == 13.0


def test_the_broker_holds_what_the_client_left_in_its_tenant(
    outcome: dict[str, Any], http: httpx.Client, tenant: str
) -> None:
    in_tenant = {"NGSILD-Tenant": tenant}
    response = http.get("/entities", params={"type": "AirQualityObserved"}, headers=in_tenant)
    assert response.status_code == 200
    by_id = {entity["id"]: entity for entity in response.json()}
    assert sorted(by_id) == [station(3), station(4)]
    assert by_id[station(4)]["pm10"] == {
        "type": "Property",
        "value": 14.0,
        "observedAt": "2026-01-31T12:00:00Z",
        "unitCode": "GQ",
    }
    for gone in (station(1), station(2)):
        assert http.get(f"/entities/{gone}", headers=in_tenant).status_code == 404
    # Nothing leaked into the default tenant.
    assert http.get(f"/entities/{station(3)}").status_code == 404
    # ngsildclient creates a tenant by upserting a marker entity into it; it stays there.
    marker = http.get(f"/entities/urn:ngsi-ld:__NGSILD-Tenant__:{tenant}", headers=in_tenant)
    assert marker.status_code == 200
    assert marker.json()["type"] == "__NGSILD-Tenant__"
