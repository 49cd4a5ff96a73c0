"""The entity lifecycle over HTTP: Purge Entities (ETSI GS CIM 009 V1.8 clause 5.6.21,
DELETE /entities of clause 6.4.3.3) and transient entities, which the broker deletes once
their `expiresAt` has passed (V1.8 clause 4.5.x, the Entity's expiresAt of clause 5.2.4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from context_broker._expiry import ExpirySchedule, ExpirySweep
from context_broker._jsonld import core_term_map
from context_broker._purge import Purge
from context_broker._service import Broker, EntityQuery
from context_broker._settings import BrokerSettings
from context_broker._store import Store
from context_broker._subscriptions._changes import EntityChange

from ._helpers import assert_problem, create, entity, fetch, new_id, prop
from ._receiver import Receiver

pytestmark = pytest.mark.integration


async def _ids(api: httpx.AsyncClient, **params: str) -> list[str]:
    response = await api.get("/entities", params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    return sorted(item["id"] for item in response.json())


async def test_purge_deletes_every_entity_of_the_type(api: httpx.AsyncClient) -> None:
    """Clause 5.6.21: the entities the selection matches are deleted (204); others stay.
    More than one of the broker's write batches (200) are purged."""
    batch = [entity("Reading", level=prop(i)) for i in range(230)]
    response = await api.post("/entityOperations/create", json=batch)
    assert response.status_code == 201, response.text
    kept = await create(api, entity("Station", level=prop(1)))
    response = await api.delete("/entities", params={"type": "Reading"})
    assert response.status_code == 204, response.text
    assert await _ids(api, type="Reading") == []
    assert await _ids(api, type="Station") == [kept]


async def test_purge_stays_in_the_callers_tenant(api: httpx.AsyncClient, broker_url: str) -> None:
    """Clause 4.14 with 5.6.21: a purge deletes only the caller's tenant's entities."""
    other_tenant = f"{api.headers['NGSILD-Tenant']}b"
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": other_tenant}
    ) as other:
        elsewhere = await create(other, entity("Reading", level=prop(1)))
        await create(api, entity("Reading", level=prop(1)))
        response = await api.delete("/entities", params={"type": "Reading"})
        assert response.status_code == 204, response.text
        assert await _ids(api, type="Reading") == []
        assert await _ids(other, type="Reading") == [elsewhere]


async def test_purge_selects_with_q(api: httpx.AsyncClient) -> None:
    """Clause 5.6.21: the selection is that of Query Entities (type, q, ...)."""
    low = await create(api, entity("Reading", level=prop(1)))
    high = await create(api, entity("Reading", level=prop(9)))
    response = await api.delete("/entities", params={"type": "Reading", "q": "level>5"})
    assert response.status_code == 204, response.text
    assert await _ids(api, type="Reading") == [low]
    del high


async def test_purge_with_drop_removes_only_those_attributes(api: httpx.AsyncClient) -> None:
    """Clause 5.6.21 (drop): the entities stay without the attributes named."""
    sensor = await create(api, entity("Reading", level=prop(1), raw=prop("x"), note=prop("n")))
    response = await api.delete("/entities", params={"type": "Reading", "drop": "raw,note"})
    assert response.status_code == 204, response.text
    body = await fetch(api, sensor)
    assert set(body) == {"id", "type", "level"}


async def test_purge_with_keep_removes_every_other_attribute(api: httpx.AsyncClient) -> None:
    """Clause 5.6.21 (keep): the entities stay with only the attributes named."""
    sensor = await create(api, entity("Reading", level=prop(1), raw=prop("x"), note=prop("n")))
    response = await api.delete("/entities", params={"type": "Reading", "keep": "level"})
    assert response.status_code == 204, response.text
    body = await fetch(api, sensor)
    assert set(body) == {"id", "type", "level"}


@pytest.mark.parametrize(
    "params",
    [{}, {"drop": "level"}, {"type": "Reading", "drop": "a", "keep": "b"}, {"type": "A;"}],
)
async def test_purge_refuses_a_missing_selector_or_both_drop_and_keep(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 6.4.3.3: a purge names the entities (type, id, idPattern, q or scopeQ), and
    drop and keep exclude each other: else 400 BadRequestData."""
    await create(api, entity("Reading", level=prop(1)))
    response = await api.delete("/entities", params=params)
    assert_problem(response, 400, "BadRequestData")
    assert await _ids(api, type="Reading") != []


async def test_an_entity_past_its_expires_at_is_gone(api: httpx.AsyncClient) -> None:
    """V1.8 transient entities: an entity created with expiresAt 1 s ahead is there until
    then and gone within the broker's sweep interval after (here within 3 s)."""
    expires = datetime.now(UTC) + timedelta(seconds=1)
    payload = entity("Reading", level=prop(1))
    payload["expiresAt"] = expires.isoformat().replace("+00:00", "Z")
    sensor = await create(api, payload)
    assert (await api.get(f"/entities/{sensor}")).status_code == 200
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        response = await api.get(f"/entities/{sensor}")
        if response.status_code == 404:
            break
        await asyncio.sleep(0.1)
    assert_problem(response, 404, "ResourceNotFound")
    assert datetime.now(UTC) >= expires


async def test_expires_at_is_shown_as_a_system_attribute(api: httpx.AsyncClient) -> None:
    """Clause 4.8 (system attributes) for the Entity's expiresAt: shown with sysAttrs
    only, and never taken for an attribute."""
    payload = entity("Reading", level=prop(1))
    payload["expiresAt"] = "2099-01-01T00:00:00Z"
    sensor = await create(api, payload)
    assert "expiresAt" not in await fetch(api, sensor)
    body = await fetch(api, sensor, options="sysAttrs")
    assert body["expiresAt"] == "2099-01-01T00:00:00.000Z"


async def test_a_later_expires_at_keeps_the_entity(api: httpx.AsyncClient) -> None:
    """A merge that moves expiresAt on (clause 5.6.17) keeps the entity past the first time."""
    payload = entity("Reading", level=prop(1))
    payload["expiresAt"] = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    sensor = await create(api, payload)
    later = {"expiresAt": "2099-01-01T00:00:00Z"}
    response = await api.patch(f"/entities/{sensor}", json=later)
    assert response.status_code == 204, response.text
    await asyncio.sleep(2.0)
    assert (await fetch(api, sensor))["id"] == sensor


async def test_expires_at_must_be_a_date_time(api: httpx.AsyncClient) -> None:
    payload = entity("Reading", new_id("Reading"), level=prop(1))
    payload["expiresAt"] = "tomorrow"
    response = await api.post("/entities", json=payload)
    assert_problem(response, 400, "BadRequestData")


def _in(seconds: float) -> str:
    """A UTC DateTime with Z, `seconds` from now."""
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _until_gone(
    api: httpx.AsyncClient, entity_id: str, gone: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The entity as soon as `gone` holds of it (within 4 s, the sweep runs every 0.5 s)."""
    deadline = time.monotonic() + 4.0
    while True:
        body = await fetch(api, entity_id)
        if gone(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_an_attribute_past_its_expires_at_is_gone_and_the_entity_stays(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.22 (V1.9): a Property or Relationship past its expiresAt becomes invalid
    and is removed; the entity and its other attributes stay."""
    payload = entity(
        "Reading",
        level=prop(1, expiresAt=_in(1)),
        owner={"type": "Relationship", "object": "urn:ngsi-ld:P:1", "expiresAt": _in(1)},
        name=prop("gauge"),
    )
    sensor = await create(api, payload)
    assert {"level", "owner"} <= set(await fetch(api, sensor))
    body = await _until_gone(api, sensor, lambda b: "level" not in b and "owner" not in b)
    assert "level" not in body and "owner" not in body
    assert body["name"] == prop("gauge")


async def test_only_the_expired_instance_of_a_multi_instance_attribute_goes(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.22 with 4.5.5 (V1.9): expiresAt belongs to one instance (by datasetId);
    the attribute's other instances stay."""
    payload = entity(
        "Reading",
        level=[prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:probe", expiresAt=_in(0.5))],
    )
    sensor = await create(api, payload)
    body = await _until_gone(api, sensor, lambda b: not isinstance(b["level"], list))
    assert body["level"] == prop(1)


async def test_an_attributes_expires_at_is_a_system_attribute(api: httpx.AsyncClient) -> None:
    """Clause 4.22 (V1.9): expiresAt of an attribute (and of a sub-attribute) is a system
    attribute: shown with sysAttrs, in the UTC form, never taken for a sub-attribute."""
    payload = entity(
        "Reading",
        level=prop(1, expiresAt="2099-01-01T00:00:00Z", quality=prop(9, expiresAt=_in(3600))),
    )
    sensor = await create(api, payload)
    plain = (await fetch(api, sensor))["level"]
    assert "expiresAt" not in plain and "expiresAt" not in plain["quality"]
    shown = (await fetch(api, sensor, options="sysAttrs"))["level"]
    assert shown["expiresAt"] == "2099-01-01T00:00:00.000Z"
    assert shown["quality"]["expiresAt"].endswith("Z")
    assert (await fetch(api, sensor, options="keyValues"))["level"] == 1


@pytest.mark.parametrize(
    "expires_at", ["tomorrow", "2099-01-01T00:00:00+01:00", "2099-01-01T00:00:00", 42]
)
async def test_an_attributes_expires_at_must_be_a_utc_date_time(
    api: httpx.AsyncClient, expires_at: object
) -> None:
    """Clause 4.22 with 4.6.3 (V1.9): expiresAt is a DateTime, written in UTC with Z; any
    other value is BadRequestData and nothing is stored."""
    payload = entity("Reading", level=prop(1, expiresAt=expires_at))
    assert_problem(await api.post("/entities", json=payload), 400, "BadRequestData")
    assert (await api.get(f"/entities/{payload['id']}")).status_code == 404


async def test_an_expires_at_in_the_past_is_accepted_and_removed(api: httpx.AsyncClient) -> None:
    """Clause 4.22 (V1.9) does not refuse an expiresAt that has passed: the attribute is
    invalid from the start and goes at the next clean-up."""
    payload = entity("Reading", level=prop(1, expiresAt="2020-01-01T00:00:00Z"), name=prop("x"))
    sensor = await create(api, payload)
    body = await _until_gone(api, sensor, lambda b: "level" not in b)
    assert "level" not in body and body["name"] == prop("x")


async def test_updates_set_move_and_clear_an_attributes_expires_at(
    api: httpx.AsyncClient,
) -> None:
    """Clauses 5.6.2 (update), 5.6.4 (partial update), 5.6.17 (merge) and 5.6.19 (replace)
    with 4.22 (V1.9): each sets an attribute's expiresAt as it sets its other members; a
    merge with a later one moves it on, a replace without one makes the attribute lasting."""
    payload = entity("Reading", a=prop(1), b=prop(2), c=prop(3, expiresAt=_in(1)), d=prop(4))
    sensor = await create(api, payload)
    path = f"/entities/{sensor}"
    updated = await api.patch(path + "/attrs", json={"a": prop(10, expiresAt=_in(0.5))})
    assert updated.status_code == 204, updated.text
    partial = await api.patch(path + "/attrs/b", json={"value": 20, "expiresAt": _in(0.5)})
    assert partial.status_code == 204, partial.text
    merged = await api.patch(path, json={"c": prop(30, expiresAt="2099-01-01T00:00:00Z")})
    assert merged.status_code == 204, merged.text
    replaced = await api.put(path + "/attrs/d", json=prop(40))
    assert replaced.status_code == 204, replaced.text
    body = await _until_gone(api, sensor, lambda b: "a" not in b and "b" not in b)
    assert "a" not in body and "b" not in body
    await asyncio.sleep(1.5)  # past c's first expiresAt, and a few sweeps more
    body = await fetch(api, sensor, options="sysAttrs")
    assert body["c"]["value"] == 30 and body["c"]["expiresAt"] == "2099-01-01T00:00:00.000Z"
    assert body["d"]["value"] == 40 and "expiresAt" not in body["d"]


async def test_an_expired_attribute_notifies_attribute_deleted(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Clause 4.22 with 5.8.1 (V1.9): the removal of an expired attribute is a deletion of
    the attribute, so a subscription with the attributeDeleted trigger is notified."""
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Reading"}],
        "watchedAttributes": ["level"],
        "notificationTrigger": ["attributeDeleted"],
        "notification": {"endpoint": {"uri": receiver.url + "/expired"}},
    }
    made = await api.post("/subscriptions", json=subscription)
    assert made.status_code == 201, made.text
    payload = entity("Reading", level=prop(1, expiresAt=_in(0.5)), name=prop("x"))
    sensor = await create(api, payload)
    arrivals = await receiver.wait_for("/expired", 1)
    data = arrivals[0].body["data"]
    assert [(item["id"], "level" in item) for item in data] == [(sensor, False)]


@pytest.fixture
async def store(broker_settings: BrokerSettings) -> AsyncIterator[Store]:
    store = Store.connect(
        broker_settings.mongo_url, broker_settings.database_prefix, auto_create=True
    )
    try:
        yield store
    finally:
        await store.close()


class _Recorder:
    """A ChangeSink that keeps what it is told."""

    def __init__(self) -> None:
        self.changes: list[EntityChange] = []

    async def listens(self, tenant: str | None) -> bool:
        return True

    async def needs_documents(self, tenant: str | None) -> bool:
        return True

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        self.changes.extend(changes)


async def test_purge_and_expiry_report_each_deletion(store: Store, tenant: str) -> None:
    """Subscriptions (clause 5.8) see purged and expired entities as deleted: each one is
    reported with its stored document before and none after, as a deletion is."""
    terms = core_term_map()
    sink = _Recorder()
    schedule = ExpirySchedule(store.platform)
    await schedule.prepare()
    broker = Broker(store, sink, schedule)
    for n in range(3):
        await broker.create_entity(tenant, entity("Reading", f"urn:ngsi-ld:R:{n}"), terms)
    transient = entity("Reading", "urn:ngsi-ld:R:t")
    transient["expiresAt"] = "2020-01-01T00:00:00Z"
    await broker.create_entity(tenant, transient, terms)
    sink.changes.clear()

    query = EntityQuery(ids=("urn:ngsi-ld:R:0", "urn:ngsi-ld:R:1"), expand=terms.expand)
    assert await broker.purge_entities(tenant, query, Purge(), batch=1) == 2
    assert [(c.entity_id, c.after) for c in sink.changes] == [
        ("urn:ngsi-ld:R:0", None),
        ("urn:ngsi-ld:R:1", None),
    ]
    assert all(c.before is not None and c.before["_id"] == c.entity_id for c in sink.changes)
    sink.changes.clear()

    sweep = ExpirySweep(broker, schedule, 1.0, batch=100)
    await sweep.sweep(datetime.now(UTC))
    expired = [c for c in sink.changes if c.tenant == tenant]
    assert [(c.entity_id, c.after) for c in expired] == [("urn:ngsi-ld:R:t", None)]
    await broker.expire_entity(tenant, "urn:ngsi-ld:R:2", datetime.now(UTC))  # no expiresAt
    assert (await broker.retrieve_entity(tenant, "urn:ngsi-ld:R:2"))["_id"] == "urn:ngsi-ld:R:2"
