"""Checks of linked-entity retrieval (V1.8 clause 4.5.23: `join`, `joinLevel`, `containedBy`,
GeoJSON answers, projections into linked entities) and of the entity lifecycle: Purge
Entities (5.6.21, 6.4.3.3) and transient entities (`expiresAt`)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance_tests._broker_framework import (
    Check,
    ProbeContext,
    Reply,
    entity_ids,
    expect,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["LIFECYCLE_CHECKS", "LINKED_CHECKS"]

LINKED_CHECKS: list[Check] = []
LIFECYCLE_CHECKS: list[Check] = []
linked = registrar(LINKED_CHECKS, "linked")
lifecycle = registrar(LIFECYCLE_CHECKS, "lifecycle")
_EXPIRY_WAIT_S = 15.0


async def _linked_pair(ctx: ProbeContext) -> tuple[str, str]:
    """Two entities, the first managedBy the second."""
    target, source = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(target, name="operator"))
    managed_by = {"type": "Relationship", "object": target}
    await ctx.create_ok(ctx.entity(source, height=30, managedBy=managed_by))
    return source, target


@linked("linked-join-inline", "4.5.23; 6.5.3.1", "join=inline puts the linked entity inside")
async def join_inline(ctx: ProbeContext) -> None:
    source, target = await _linked_pair(ctx)
    reply = await ctx.retrieve(source, join="inline")
    expect_status(reply, 200)
    relationship: Any = reply.body.get("managedBy") if isinstance(reply.body, dict) else None
    inner = relationship.get("entity") if isinstance(relationship, dict) else None
    expect(
        isinstance(inner, dict)
        and inner.get("id") == target
        and relationship.get("object") == target,
        f"managedBy keeping object {target} with the entity {target} in its `entity` member",
        reply.describe(),
    )


@linked("linked-join-flat", "4.5.23; 6.4.3.2", "join=flat lists the linked entities after")
async def join_flat(ctx: ProbeContext) -> None:
    source, target = await _linked_pair(ctx)
    reply = await ctx.request(
        "GET", "entities", params={"id": source, "type": ctx.entity_type, "join": "flat"}
    )
    expect_status(reply, 200)
    expect(
        entity_ids(reply) == [source, target],
        f"the entity {source}, then the linked entity {target}",
        reply.describe(),
    )


@linked("linked-join-level-400", "4.5.23; 6.5.3.1", "joinLevel must be a positive integer")
async def join_level_invalid(ctx: ProbeContext) -> None:
    source, _ = await _linked_pair(ctx)
    reply = await ctx.retrieve(source, join="inline", joinLevel="0")
    expect_problem(reply, 400, "BadRequestData")


@linked("linked-q-path", "4.9; 4.5.23; 6.4.3.2", "q goes through a Relationship with braces")
async def q_through_relationship(ctx: ProbeContext) -> None:
    source, _ = await _linked_pair(ctx)
    other = ctx.new_id()
    await ctx.create_ok(ctx.entity(other, height=30))
    reply = await ctx.request(
        "GET", "entities", params={"type": ctx.entity_type, "q": 'managedBy{name}=="operator"'}
    )
    expect(entity_ids(reply) == [source], f"only {source}", reply.describe())


_GEO_JSON = {"Accept": "application/geo+json"}


def _features(reply: Reply) -> list[Any]:
    body = reply.body if isinstance(reply.body, dict) else {}
    features = body.get("features") if body.get("type") == "FeatureCollection" else None
    return features if isinstance(features, list) else []


@linked("linked-geojson-inline", "4.5.23; 4.5.16", "GeoJSON join=inline nests a Feature")
async def geojson_inline(ctx: ProbeContext) -> None:
    source, target = await _linked_pair(ctx)
    params = {"id": source, "type": ctx.entity_type, "join": "inline"}
    reply = await ctx.request("GET", "entities", params=params, headers=_GEO_JSON)
    expect_status(reply, 200)
    features = _features(reply)
    properties = features[0].get("properties") if len(features) == 1 else None
    relationship = properties.get("managedBy") if isinstance(properties, dict) else None
    inner = relationship.get("entity") if isinstance(relationship, dict) else None
    expect(
        isinstance(inner, dict) and inner.get("type") == "Feature" and inner.get("id") == target,
        f"one Feature whose properties.managedBy.entity is the Feature of {target}",
        reply.describe(),
    )


@linked("linked-geojson-flat", "4.5.23; 4.5.16", "GeoJSON join=flat adds Features")
async def geojson_flat(ctx: ProbeContext) -> None:
    source, target = await _linked_pair(ctx)
    params = {"id": source, "type": ctx.entity_type, "join": "flat"}
    reply = await ctx.request("GET", "entities", params=params, headers=_GEO_JSON)
    expect_status(reply, 200)
    features = _features(reply)
    expect(
        [f.get("id") for f in features if isinstance(f, dict)] == [source, target]
        and all(f.get("type") == "Feature" for f in features),
        f"a FeatureCollection of the Feature of {source}, then that of {target}",
        reply.describe(),
    )


@linked("linked-pick-flat", "4.21; 4.5.23", "pick=rel{...} projects the flat linked entity")
async def pick_flat(ctx: ProbeContext) -> None:
    source, target = await _linked_pair(ctx)
    params = {"id": source, "type": ctx.entity_type, "join": "flat", "pick": "id,managedBy{id}"}
    reply = await ctx.request("GET", "entities", params=params)
    expect_status(reply, 200)
    body = reply.body if isinstance(reply.body, list) else []
    expect(
        len(body) == 2 and set(body[0]) == {"id", "managedBy"} and body[1] == {"id": target},
        f"{source} with id and managedBy only, then {target} with its id only",
        reply.describe(),
    )


@linked("linked-contained-by", "4.5.23", "containedBy ids are not joined again")
async def contained_by(ctx: ProbeContext) -> None:
    source, target = await _linked_pair(ctx)
    reply = await ctx.retrieve(source, join="inline", containedBy=target)
    expect_status(reply, 200)
    relationship: Any = reply.body.get("managedBy") if isinstance(reply.body, dict) else None
    expect(
        isinstance(relationship, dict)
        and relationship.get("object") == target
        and "entity" not in relationship,
        f"managedBy without the entity {target}, which containedBy names as traversed",
        reply.describe(),
    )


async def _purge(ctx: ProbeContext, **params: str) -> Reply:
    return await ctx.request("DELETE", "entities", params={"type": ctx.entity_type, **params})


@lifecycle("lifecycle-purge-204", "5.6.21; 6.4.3.3", "Purge Entities deletes the selection")
async def purge(ctx: ProbeContext) -> None:
    gone, kept = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(gone, level=9))
    await ctx.create_ok(ctx.entity(kept, level=1))
    expect_status(await _purge(ctx, q="level>5"), 204, what="for the purge")
    expect_status(await ctx.retrieve(gone), 404, what=f"for the purged {gone}")
    expect_status(await ctx.retrieve(kept), 200, what=f"for {kept}, which q did not select")


@lifecycle("lifecycle-purge-drop", "5.6.21; 6.4.3.3", "Purge with drop removes attributes")
async def purge_drop(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, level=1, raw="x"))
    expect_status(await _purge(ctx, id=entity_id, drop="raw"), 204, what="for the purge")
    reply = await ctx.retrieve(entity_id)
    expect_status(reply, 200, what="for the entity, which stays")
    body = reply.body if isinstance(reply.body, dict) else {}
    expect("raw" not in body and "level" in body, "level without raw", reply.describe())


@lifecycle("lifecycle-purge-400", "5.6.21; 6.4.3.3", "A purge without a selector is 400")
async def purge_without_selector(ctx: ProbeContext) -> None:
    reply = await ctx.request("DELETE", "entities", params={"drop": "level"})
    expect_problem(reply, 400, "BadRequestData")


@lifecycle("lifecycle-expires-at", "5.2.4", "An entity past its expiresAt is deleted")
async def expires(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    at = datetime.now(UTC) + timedelta(seconds=1)
    payload = ctx.entity(entity_id, level=1)
    payload["expiresAt"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await ctx.create_ok(payload)
    deadline = time.monotonic() + _EXPIRY_WAIT_S
    reply = await ctx.retrieve(entity_id)
    while reply.status != 404 and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        reply = await ctx.retrieve(entity_id)
    expect_status(reply, 404, what=f"within {_EXPIRY_WAIT_S:.0f} s of its expiresAt")


@lifecycle("lifecycle-attribute-expires-at", "4.22", "An expired attribute goes, the entity stays")
async def attribute_expires(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    at = datetime.now(UTC) + timedelta(seconds=1)
    expires_at = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    level = {"type": "Property", "value": 1, "expiresAt": expires_at}
    await ctx.create_ok(ctx.entity(entity_id, level=level, name="gauge"))
    deadline = time.monotonic() + _EXPIRY_WAIT_S
    reply = await ctx.retrieve(entity_id)
    while _has(reply, "level") and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        reply = await ctx.retrieve(entity_id)
    expect_status(reply, 200, what="for the entity, which stays")
    expect(
        not _has(reply, "level") and _has(reply, "name"),
        f"name without level within {_EXPIRY_WAIT_S:.0f} s of level's expiresAt",
        reply.describe(),
    )


@lifecycle("lifecycle-attribute-expires-at-400", "4.22", "An attribute's expiresAt is a DateTime")
async def attribute_expires_not_a_time(ctx: ProbeContext) -> None:
    level = {"type": "Property", "value": 1, "expiresAt": "tomorrow"}
    reply = await ctx.request("POST", "entities", json=ctx.entity(level=level))
    expect_problem(reply, 400, "BadRequestData")


def _has(reply: Reply, member: str) -> bool:
    return isinstance(reply.body, dict) and member in reply.body
