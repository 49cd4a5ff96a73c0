"""The durable notification queue on the real store: claims under a lease, one claimer per
record, retries due later, delivered records gone (docs/architecture.md, "Notifications")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from context_broker._delivery import NotificationQueue, queue_record
from context_broker._time import utc_now

pytestmark = pytest.mark.integration


@pytest.fixture
async def queue(store_url: str) -> AsyncIterator[NotificationQueue]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(store_url, tz_aware=True)
    database = client[f"q{secrets.token_hex(4)}"]
    found = NotificationQueue(database)
    await found.prepare()
    try:
        yield found
    finally:
        await client.drop_database(database.name)
        await client.close()


def record(endpoint: str, subscription: str = "urn:ngsi-ld:Subscription:s") -> dict[str, object]:
    return queue_record(
        "firenze",
        subscription,
        endpoint,
        {"Content-Type": "application/json"},
        b"{}",
        {},
        utc_now(),
    )


async def test_a_record_is_claimed_by_one_claimer_until_its_lease_ends(
    queue: NotificationQueue,
) -> None:
    await queue.add([record("http://a.example/n"), record("http://b.example/n")])
    now = utc_now()
    first = await queue.claim(now, 10, lease_s=30)
    assert [each.endpoint for each in first] == ["http://a.example/n", "http://b.example/n"]
    assert await queue.claim(now, 10, lease_s=30) == []
    later = now + timedelta(seconds=31)
    again = await queue.claim(later, 10, lease_s=30)
    assert {each.id for each in again} == {each.id for each in first}
    # The first claimer's lease ended: its `done` no longer removes what another holds.
    await queue.done(first)
    assert await queue.pending() == 2
    await queue.done(again)
    assert await queue.pending() == 0


async def test_retries_are_due_later_and_busy_endpoints_wait(queue: NotificationQueue) -> None:
    await queue.add([record("http://slow.example/n"), record("http://fast.example/n")])
    now = utc_now()
    claimed = await queue.claim(now, 10, lease_s=30, busy_endpoints=["http://slow.example/n"])
    assert [each.endpoint for each in claimed] == ["http://fast.example/n"]
    await queue.retry([(claimed[0], now + timedelta(seconds=5))])
    slow = await queue.claim(now, 10, lease_s=30)
    assert [each.endpoint for each in slow] == ["http://slow.example/n"]
    retried = await queue.claim(now + timedelta(seconds=6), 10, lease_s=30)
    assert [(each.endpoint, each.attempts) for each in retried] == [("http://fast.example/n", 1)]
    assert retried[0].headers == {"Content-Type": "application/json"}
    assert retried[0].tenant == "firenze"
