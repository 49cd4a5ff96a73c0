"""A gas utility publishes once; leak alerts appear in the comune they lie in, meter readings
and private attributes never leave the utility, and an alert outside Toscana is a dead letter."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import orjson
import pytest
from conftest import Ingest, ingest_settings, running_ingest

from context_broker import BrokerSettings
from regional_tenants import COMUNI_IT_LIES_IN, SharingRule, TenantRegistry
from sensor_ingest import AttributeMapping, ServiceGroup
from store_edge import connect

pytestmark = pytest.mark.integration

FIRENZE = {"type": "Point", "coordinates": [11.2558, 43.7696]}
BOLOGNA = {"type": "Point", "coordinates": [11.3426, 44.4949]}


async def _provision(ingest: Ingest, settings: BrokerSettings, owner: str) -> str:
    client = connect(settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{settings.database_prefix}__platform"])
        await registry.put_rule(
            owner,
            SharingRule(
                name="leaks-to-comuni",
                owner=owner,
                entity_types=("Alert",),
                attributes=(
                    "category",
                    "subCategory",
                    "description",
                    "location",
                    "dateIssued",
                    "contractId",
                ),
                targets=(COMUNI_IT_LIES_IN,),
                private=("contractId",),
            ),
        )
    finally:
        await client.close()
    key = f"gas-{secrets.token_hex(4)}"
    await ingest.runtime.registry.put_group(
        ServiceGroup(
            tenant=owner,
            format="iotagent-json",
            group=key,
            entity_type="Alert",
            attributes=(AttributeMapping("where", "location", kind="GeoProperty"),),
        )
    )
    await ingest.runtime.registry.put_group(
        ServiceGroup(
            tenant=owner,
            format="iotagent-json",
            group=f"{key}-meters",
            entity_type="SmartMeteringObservation",
            attributes=(AttributeMapping("where", "location", kind="GeoProperty"),),
        )
    )
    return key


def _alert(where: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "where": where,
            "category": "environment",
            "subCategory": "airPollution",
            "alertSource": "urn:ngsi-ld:Device:gas-sensor",
            "dateIssued": "2026-11-23T08:00:00Z",
            "description": "odore di gas",
            "contractId": "C-123",
        }
    )


async def test_leak_alerts_reach_the_comune_without_private_data(
    ingest: Ingest, broker_settings: BrokerSettings
) -> None:
    owner = f"gas{secrets.token_hex(3)}"
    key = await _provision(ingest, broker_settings, owner)
    with ingest.publisher() as mqtt:
        mqtt.publish(f"/json/{key}/leak-fi/attrs", _alert(FIRENZE))
        mqtt.publish(f"/json/{key}/leak-bo/attrs", _alert(BOLOGNA))
        mqtt.publish(
            f"/json/{key}-meters/meter-fi/attrs",
            orjson.dumps({"where": FIRENZE, "dateObserved": "2026-11-23T08:00:00Z"}),
        )

    original = await ingest.wait_for_entity("urn:ngsi-ld:Alert:leak-fi", tenant=owner)
    copy = await ingest.wait_for_entity("urn:ngsi-ld:Alert:leak-fi", tenant="firenze")
    await ingest.wait_for_entity("urn:ngsi-ld:Alert:leak-bo", tenant=owner)
    for _ in range(100):
        letters = await ingest.runtime.dead_letters.recent(reason="not-in-region")
        if letters:
            break
        await asyncio.sleep(0.1)

    assert original["contractId"]["value"] == "C-123"
    assert copy["sharedBy"]["value"] == owner
    assert copy["location"]["value"] == FIRENZE
    assert "contractId" not in copy
    assert "alertSource" not in copy
    await ingest.wait_for_entity("urn:ngsi-ld:SmartMeteringObservation:meter-fi", tenant=owner)
    meter = await ingest.entity("urn:ngsi-ld:SmartMeteringObservation:meter-fi", tenant="firenze")
    assert meter.status_code == 404
    elsewhere = await ingest.entity("urn:ngsi-ld:Alert:leak-fi", tenant="prato")
    assert elsewhere.status_code == 404
    assert len(letters) == 1
    assert letters[0].tenant == owner
    assert letters[0].fragment is not None
    assert letters[0].fragment["id"] == "urn:ngsi-ld:Alert:leak-bo"
    assert "outside every comune" in letters[0].rejection.message


async def test_shares_are_in_both_audit_logs(
    ingest: Ingest, broker_settings: BrokerSettings
) -> None:
    owner = f"gas{secrets.token_hex(3)}"
    key = await _provision(ingest, broker_settings, owner)
    with ingest.publisher() as mqtt:
        mqtt.publish(f"/json/{key}/leak-audit/attrs", _alert(FIRENZE))
    await ingest.wait_for_entity("urn:ngsi-ld:Alert:leak-audit", tenant="firenze")
    client = connect(broker_settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{broker_settings.database_prefix}__platform"])
        for _ in range(50):
            sent = await registry.audit_log(owner)
            if sent:
                break
            await asyncio.sleep(0.1)
        received = await registry.audit_log("firenze", limit=1000)
    finally:
        await client.close()
    assert sent[0].action == "share.sent"
    assert sent[0].detail["to"] == "firenze"
    assert "urn:ngsi-ld:Alert:leak-audit" in sent[0].detail["entities"]
    assert any(e.action == "share.received" and e.detail["from"] == owner for e in received)


async def test_a_copy_is_withdrawn_once_its_owner_deletes_the_source(
    store_url: str, mqtt_port: int, broker_url: str, broker_settings: BrokerSettings
) -> None:
    """The leak is fixed and the utility deletes its alert: within a round of the bridge,
    Firenze's copy goes too, while the copy of an alert that still stands stays."""
    settings = ingest_settings(
        store_url,
        mqtt_port,
        broker_url,
        f"ingest_{secrets.token_hex(4)}",
        broker_settings.database_prefix,
    )
    settings = settings.model_copy(update={"bridge_withdraw_every_s": 0.2})
    owner = f"gas{secrets.token_hex(3)}"
    fixed, standing = (f"urn:ngsi-ld:Alert:leak-{secrets.token_hex(3)}" for _ in range(2))
    async with running_ingest(settings) as runtime:
        ingest = Ingest(runtime, settings, owner, broker_url)
        key = await _provision(ingest, broker_settings, owner)
        with ingest.publisher() as mqtt:
            for entity_id in (fixed, standing):
                device = entity_id.rsplit(":", 1)[1]
                mqtt.publish(f"/json/{key}/{device}/attrs", _alert(FIRENZE))
        for entity_id in (fixed, standing):
            await ingest.wait_for_entity(entity_id, tenant="firenze")

        async with httpx.AsyncClient(base_url=f"{broker_url}/ngsi-ld/v1") as http:
            deleted = await http.delete(f"/entities/{fixed}", headers={"NGSILD-Tenant": owner})
            assert deleted.status_code == 204
            for _ in range(100):
                copy = await http.get(f"/entities/{fixed}", headers={"NGSILD-Tenant": "firenze"})
                if copy.status_code == 404:
                    break
                await asyncio.sleep(0.1)
        assert copy.status_code == 404, "the copy of a deleted alert was not withdrawn in 10 s"
        await ingest.wait_for_entity(standing, tenant="firenze", timeout_s=1)
        assert await runtime.sharing.withdraw_deleted_copies() == 0

    client = connect(broker_settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{broker_settings.database_prefix}__platform"])
        owner_log = await registry.audit_log(owner, limit=1000)
        firenze_log = await registry.audit_log("firenze", limit=1000)
    finally:
        await client.close()
    assert any(
        e.action == "share.withdrawn" and e.detail == {"from": "firenze", "entities": [fixed]}
        for e in owner_log
    )
    assert any(
        e.action == "share.withdrawn" and e.detail == {"by": owner, "entities": [fixed]}
        for e in firenze_log
    )
