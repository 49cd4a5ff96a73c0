"""Acknowledged writes survive kill -9 of the store: every entity the API answered 201 for
and every outbox record ingest would acknowledge MQTT on is there after the restart.

CONTESTO_STORE_UNJOURNALED_WRITES_RISK_LOSS=true runs it in the risky mode, which loses some.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from _servers import ThreadedServer
from pymongo import MongoClient

from broker_bridge import Outbox
from contesto import EmbeddedStore
from contesto._embedded import free_port
from contesto._settings import StackSettings
from context_broker import BrokerSettings, create_app
from store_edge import connect

pytestmark = pytest.mark.integration

PREFIX = "durable"
WRITERS = 8
WRITE_FOR_S = 2.0


async def _post_entities(
    api: httpx.AsyncClient, first: int, stop: asyncio.Event, acknowledged: set[int]
) -> None:
    """POST entities numbered first, first + WRITERS, ... until `stop`."""
    n = first
    while not stop.is_set():
        entity = {
            "id": f"urn:ngsi-ld:Sensor:{n}",
            "type": "Sensor",
            "sequence": {"type": "Property", "value": n},
        }
        try:
            answer = await api.post("/entities", json=entity)
        except httpx.HTTPError:
            answer = None
        if answer is not None and answer.status_code == 201:
            acknowledged.add(n)
        n += WRITERS


async def _append_outbox(outbox: Outbox, stop: asyncio.Event, acknowledged: set[int]) -> None:
    """Append one record per call, as ingest does per batch before it acknowledges MQTT."""
    n = 0
    while not stop.is_set():
        try:
            await outbox.append({"prato": [{"id": f"urn:ngsi-ld:Sensor:{n}", "n": n}]})
        except Exception:  # the store is gone: this append was not acknowledged
            await asyncio.sleep(0.05)
        else:
            acknowledged.add(n)
        n += 1


async def _write_kill_restart(
    store: EmbeddedStore, api_url: str, journaled: bool
) -> tuple[set[int], set[int], int]:
    """Write, SIGKILL the store mid-stream, restart it on the same port and data; the writes
    acknowledged, and how many were acknowledged at the kill."""
    stop = asyncio.Event()
    posted: set[int] = set()
    appended: set[int] = set()
    ingest_client = connect(store.url, journaled=journaled)
    try:
        async with httpx.AsyncClient(base_url=api_url + "/ngsi-ld/v1", timeout=20.0) as api:
            tasks = [
                asyncio.create_task(_post_entities(api, first, stop, posted))
                for first in range(WRITERS)
            ]
            outbox = Outbox(ingest_client.ingest)
            tasks.append(asyncio.create_task(_append_outbox(outbox, stop, appended)))
            await asyncio.sleep(WRITE_FOR_S)
            assert store.pid is not None
            os.kill(store.pid, signal.SIGKILL)
            at_kill = len(posted) + len(appended)
            stop.set()
            await asyncio.to_thread(store.stop)  # reaps the killed process
            await asyncio.to_thread(store.start)
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        await ingest_client.close()
    return posted, appended, at_kill


def test_acknowledged_writes_survive_a_kill_of_the_store(tmp_path: Path) -> None:
    started = time.monotonic()
    journaled = not StackSettings().store_unjournaled_writes_risk_loss
    store = EmbeddedStore(tmp_path / "db", port=free_port(), journaled=journaled)
    store.start()
    try:
        settings = BrokerSettings(mongo_url=store.url, database_prefix=PREFIX)
        with ThreadedServer(create_app(settings)) as server:
            posted, appended, at_kill = asyncio.run(
                _write_kill_restart(store, server.url, journaled)
            )
        client: MongoClient[dict[str, object]] = MongoClient(store.url)
        with client:
            entity_ids = [d["_id"] for d in client[PREFIX].entities.find({}, {"_id": 1})]
            records = list(client.ingest.outbox.find({}, {"fragments": 1}))
    finally:
        store.stop()
    assert at_kill > 40, "too few writes before the kill to prove anything"
    stored_entities = {int(str(i).rsplit(":", 1)[1]) for i in entity_ids}
    stored_records = {int(r["fragments"][0]["n"]) for r in records}  # type: ignore[index]
    assert sorted(posted - stored_entities) == [], "acknowledged entities were lost"
    assert sorted(appended - stored_records) == [], "acknowledged outbox records were lost"
    assert time.monotonic() - started < 60
