"""The durable notification queue on the real store: claims under a lease, one claimer per
record, retries due later, delivered records gone (docs/architecture.md, "Notifications")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from context_broker._delivery import NotificationQueue, queue_record
from context_broker._delivery._queue import notification_entry, parcel_record
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


async def test_a_record_holds_several_notifications_and_keeps_only_those_sent_again(
    queue: NotificationQueue,
) -> None:
    """Writes made together queue one record per endpoint (docs/architecture.md,
    "Notifications"); a notification delivered is not sent again when others of its
    record are retried."""
    entries = [
        notification_entry(f"urn:ngsi-ld:Subscription:{n}", {"X-N": str(n)}, b"{}", {})
        for n in range(3)
    ]
    await queue.add([parcel_record("firenze", "http://a.example/n", entries, utc_now())])
    now = utc_now()
    claimed = await queue.claim(now, 10, lease_s=30)
    assert [(each.subscription_id, each.index) for each in claimed] == [
        ("urn:ngsi-ld:Subscription:0", 0),
        ("urn:ngsi-ld:Subscription:1", 1),
        ("urn:ngsi-ld:Subscription:2", 2),
    ]
    assert len({each.id for each in claimed}) == 1
    await queue.retry([(claimed[2], now + timedelta(seconds=5)), (claimed[0], now)])
    assert await queue.claim(now + timedelta(seconds=4), 10, lease_s=30) == []
    again = await queue.claim(now + timedelta(seconds=6), 10, lease_s=30)
    assert [(each.subscription_id, each.headers, each.attempts) for each in again] == [
        ("urn:ngsi-ld:Subscription:0", {"X-N": "0"}, 1),
        ("urn:ngsi-ld:Subscription:2", {"X-N": "2"}, 1),
    ]
    await queue.retry([(again[1], now)], attempted=False)
    last = await queue.claim(now + timedelta(seconds=6), 10, lease_s=30)
    assert [(each.subscription_id, each.attempts) for each in last] == [
        ("urn:ngsi-ld:Subscription:2", 1)
    ]
    await queue.done(last)
    assert await queue.pending() == 0


async def test_preparing_drops_the_claim_index_of_an_older_queue(
    queue: NotificationQueue,
) -> None:
    """The queue's records are read back by `_id` when claimed; the `claim` index an older
    version created only made inserts and deletes dearer (docs/architecture.md)."""
    await queue.records.create_index("claim", name="claim")
    await queue.prepare()
    assert sorted(await queue.records.index_information()) == ["_id_", "due"]
