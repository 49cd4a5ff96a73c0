"""Every acknowledged write reaches the broker's ChangeSink: one change per entity changed,
with the stored documents before and after, over the real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from context_broker._jsonld import core_term_map
from context_broker._names import encode_field
from context_broker._service import Broker
from context_broker._settings import BrokerSettings
from context_broker._store import Store
from context_broker._subscriptions._changes import EntityChange
from context_broker._subscriptions._matching import Change

TERMS = core_term_map()
ROOM = "urn:ngsi-ld:Room:"


def iri(term: str) -> str:
    return TERMS.expand(term)


class RecordingSink:
    """A ChangeSink that keeps what it is told."""

    def __init__(self) -> None:
        self.changes: list[EntityChange] = []

    async def listens(self, tenant: str | None) -> bool:
        return True

    async def needs_documents(self, tenant: str | None) -> bool:
        return True

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        self.changes.extend(changes)

    def take(self) -> list[Change]:
        """The changes told since the last take, as the matcher sees them."""
        taken = [Change.between(c.tenant, c.before, c.after) for c in self.changes]
        for told, change in zip(self.changes, taken, strict=True):
            assert told.entity_id == change.entity_id
        self.changes.clear()
        return taken


@pytest.fixture
async def store(broker_settings: BrokerSettings) -> AsyncIterator[Store]:
    store = Store.connect(
        broker_settings.mongo_url, broker_settings.database_prefix, auto_create=True
    )
    try:
        yield store
    finally:
        await store.close()


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def room(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"{ROOM}{n}", "type": "Room", **{k: prop(v) for k, v in attrs.items()}}


def summary(change: Change) -> tuple[str, str, set[str], set[str], set[str]]:
    return (
        change.kind,
        change.entity_id,
        {TERMS.compact(name) for name in change.created},
        {TERMS.compact(name) for name in change.updated},
        {TERMS.compact(name) for name in change.deleted},
    )


async def test_every_write_reports_its_changes(store: Store, tenant: str) -> None:
    sink = RecordingSink()
    broker = Broker(store, sink)
    e1 = f"{ROOM}1"

    await broker.create_entity(tenant, room(1, temperature=20, humidity=40), TERMS)
    [created] = sink.take()
    assert summary(created) == ("created", e1, {"temperature", "humidity"}, set(), set())
    assert created.tenant == tenant
    assert created.before is None and created.after is not None
    assert created.after["_id"] == e1

    # the one-round-trip update (attributes the entity has), then its partial form
    await broker.update_attributes(tenant, e1, {"temperature": prop(21)}, TERMS)
    [fast] = sink.take()
    assert summary(fast) == ("updated", e1, set(), {"temperature"}, set())
    assert fast.before is not None and fast.after is not None
    field = encode_field(iri("temperature"))
    assert fast.before["attrs"][field]["value"] == 20
    assert fast.after["attrs"][field]["value"] == 21
    assert fast.after["v"] == fast.before["v"] + 1

    await broker.partial_update_attribute(tenant, e1, "temperature", {"value": 22}, TERMS)
    [partial] = sink.take()
    assert summary(partial) == ("updated", e1, set(), {"temperature"}, set())
    assert partial.after is not None and partial.after["attrs"][field]["value"] == 22

    await broker.append_attributes(tenant, e1, {"pressure": prop(1013)}, TERMS, no_overwrite=False)
    assert [summary(c) for c in sink.take()] == [("updated", e1, {"pressure"}, set(), set())]

    await broker.replace_attribute(tenant, e1, "humidity", prop(41), TERMS)
    assert [summary(c) for c in sink.take()] == [("updated", e1, set(), {"humidity"}, set())]

    await broker.delete_attribute(tenant, e1, "pressure", TERMS, dataset_id=None, delete_all=False)
    assert [summary(c) for c in sink.take()] == [("updated", e1, set(), set(), {"pressure"})]

    await broker.merge_entity(tenant, e1, {"temperature": prop(23)}, TERMS)
    assert [summary(c) for c in sink.take()] == [("updated", e1, set(), {"temperature"}, set())]

    await broker.replace_entity(tenant, e1, room(1, speed=3), TERMS)
    assert [summary(c) for c in sink.take()] == [
        ("updated", e1, {"speed"}, set(), {"temperature", "humidity"})
    ]

    await broker.delete_entity(tenant, e1)
    [deleted] = sink.take()
    assert summary(deleted) == ("deleted", e1, set(), set(), {"speed"})
    assert deleted.after is None and deleted.before is not None
    assert deleted.before["_id"] == e1


async def test_batches_report_each_entity_that_succeeded(store: Store, tenant: str) -> None:
    sink = RecordingSink()
    broker = Broker(store, sink)
    e2, e3, e4 = (f"{ROOM}{n}" for n in (2, 3, 4))

    created = await broker.batch(
        tenant,
        "create",
        [(room(2, temperature=1), TERMS), (room(3, temperature=2), TERMS), (room(2), TERMS)],
    )
    assert len(created.errors) == 1
    assert [summary(c) for c in sink.take()] == [
        ("created", e2, {"temperature"}, set(), set()),
        ("created", e3, {"temperature"}, set(), set()),
    ]

    await broker.batch(
        tenant,
        "upsert",
        [(room(3, humidity=50), TERMS), (room(4, humidity=60), TERMS)],
        option="update",
    )
    upserted = sink.take()
    assert [summary(c) for c in upserted] == [
        ("updated", e3, {"humidity"}, set(), set()),
        ("created", e4, {"humidity"}, set(), set()),
    ]
    assert upserted[0].after is not None
    assert {iri("temperature"), iri("humidity")} <= set(upserted[0].after["an"])

    await broker.batch(tenant, "upsert", [(room(3, speed=1), TERMS)])
    assert [summary(c) for c in sink.take()] == [
        ("updated", e3, {"speed"}, set(), {"temperature", "humidity"})
    ]

    await broker.batch(
        tenant,
        "update",
        [(room(2, temperature=5), TERMS), (room(9, temperature=5), TERMS)],
    )
    assert [summary(c) for c in sink.take()] == [("updated", e2, set(), {"temperature"}, set())]

    await broker.batch(tenant, "merge", [({"id": e4, "speed": prop(2)}, TERMS)])
    assert [summary(c) for c in sink.take()] == [("updated", e4, {"speed"}, set(), set())]

    gone = await broker.batch(
        tenant, "delete", [(e2, TERMS), (e3, TERMS), (e4, TERMS), (f"{ROOM}9", TERMS)]
    )
    assert sorted(gone.success) == [e2, e3, e4]
    deletions = sink.take()
    assert [(c.kind, c.entity_id) for c in deletions] == [
        ("deleted", e2),
        ("deleted", e3),
        ("deleted", e4),
    ]
    assert all(c.before is not None and c.before["attrs"] for c in deletions)


async def test_a_broker_without_a_sink_reads_no_versions(store: Store, tenant: str) -> None:
    """The default sink hears nothing, and the hot path keeps its one round trip."""
    broker = Broker(store)
    await broker.create_entity(tenant, room(5, temperature=1), TERMS)
    repo = await store.repository(tenant)
    calls: list[str] = []
    read = repo.update_existing_before

    async def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append("read")
        return await read(*args, **kwargs)

    repo.update_existing_before = spy  # type: ignore[method-assign]
    try:
        await broker.update_attributes(tenant, f"{ROOM}5", {"temperature": prop(2)}, TERMS)
    finally:
        del repo.update_existing_before
    assert calls == []
    doc = await broker.retrieve_entity(tenant, f"{ROOM}5")
    assert doc["attrs"][encode_field(iri("temperature"))]["value"] == 2
