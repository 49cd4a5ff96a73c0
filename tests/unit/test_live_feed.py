"""The control room's live feed: which tenants' changes it asks for, and what a viewer gets."""

from __future__ import annotations

from context_broker._live_feed import EntityTouched, LiveFeed, Viewer
from context_broker._subscriptions._changes import EntityChange

DOC = {"_id": "urn:ngsi-ld:X:1"}


def _change(tenant: str | None, entity_id: str, *, deleted: bool = False) -> EntityChange:
    return EntityChange(tenant, entity_id, DOC, None if deleted else DOC)


async def test_a_tenant_is_listened_to_only_while_a_viewer_of_it_is_connected() -> None:
    feed = LiveFeed()
    assert not await feed.listens("firenze")
    with feed.watching("firenze"):
        assert await feed.listens("firenze")
        assert not await feed.listens("prato")
        assert not await feed.listens(None)
    assert not await feed.listens("firenze")


async def test_a_viewer_gets_the_changes_of_its_tenant_only() -> None:
    feed = LiveFeed()
    with feed.watching("firenze") as florence, feed.watching(None) as default:
        await feed.entities_changed(
            [_change("firenze", "urn:a"), _change("prato", "urn:b"), _change(None, "urn:c")]
        )
        await feed.entities_changed([_change("firenze", "urn:d", deleted=True)])
        assert await florence.next_changes(1.0) == [
            EntityTouched("urn:a", deleted=False),
            EntityTouched("urn:d", deleted=True),
        ]
        assert await default.next_changes(1.0) == [EntityTouched("urn:c", deleted=False)]


async def test_a_viewer_with_nothing_pending_waits_then_gets_nothing() -> None:
    with LiveFeed().watching("firenze") as viewer:
        assert await viewer.next_changes(0.05) == []


async def test_an_entity_changed_twice_is_pending_once_with_its_latest_change() -> None:
    viewer = Viewer()
    viewer.offer(EntityTouched("urn:a", deleted=False))
    viewer.offer(EntityTouched("urn:b", deleted=False))
    viewer.offer(EntityTouched("urn:a", deleted=True))
    assert await viewer.next_changes(1.0) == [
        EntityTouched("urn:b", deleted=False),
        EntityTouched("urn:a", deleted=True),
    ]


async def test_a_viewer_that_falls_behind_keeps_the_newest_changes_and_says_it_lost_some() -> None:
    viewer = Viewer(backlog=2)
    for name in ("urn:a", "urn:b", "urn:c"):
        viewer.offer(EntityTouched(name, deleted=False))
    assert viewer.lost_changes
    assert [t.entity_id for t in await viewer.next_changes(1.0)] == ["urn:b", "urn:c"]
