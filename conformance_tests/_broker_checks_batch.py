"""Checks of batch operations (clauses 5.6.7-5.6.10, 6.14-6.17; results of 5.2.16, 5.2.17)."""

from __future__ import annotations

from typing import Any

from conformance_tests._broker_framework import (
    ERRORS_BASE,
    Check,
    ProbeContext,
    Reply,
    expect,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["BATCH_CHECKS"]

BATCH_CHECKS: list[Check] = []
check = registrar(BATCH_CHECKS, "batch")


async def _batch(ctx: ProbeContext, operation: str, body: list[Any], **params: str) -> Reply:
    for item in body:
        ctx.track(item if isinstance(item, str) else str(item["id"]))
    return await ctx.request(
        "POST", f"entityOperations/{operation}", json=body, params=params or None
    )


def _expect_batch_result(reply: Reply, succeeded: set[str], failed: dict[str, int]) -> None:
    """207 with a BatchOperationResult: `success` ids, `errors` by id with a ProblemDetails."""
    wanted = (
        f"HTTP 207 BatchOperationResult with success {sorted(succeeded)} and errors for "
        f"{sorted(failed)}"
    )
    body = reply.body
    expect(reply.status == 207 and isinstance(body, dict), wanted, reply.describe())
    success, errors = body.get("success"), body.get("errors")
    expect(isinstance(success, list) and isinstance(errors, list), wanted, reply.describe())
    expect(set(success) == succeeded, wanted, reply.describe())
    by_id = {e.get("entityId"): e.get("error") for e in errors if isinstance(e, dict)}
    expect(set(by_id) == set(failed), wanted, reply.describe())
    for entity_id, status in failed.items():
        problem = by_id[entity_id]
        expect(
            isinstance(problem, dict)
            and str(problem.get("type", "")).startswith(ERRORS_BASE)
            and problem.get("status", status) == status,
            f"BatchEntityError of {entity_id} with a ProblemDetails of status {status}",
            reply.describe(),
        )


@check("batch-create-201", "5.6.7; 6.14.3.1", "Batch create answers 201 with the ids")
async def create(ctx: ProbeContext) -> None:
    ids = [ctx.new_id(), ctx.new_id()]
    reply = await _batch(ctx, "create", [ctx.entity(i, temperature=1) for i in ids])
    expect_status(reply, 201, what="with the array of created ids")
    expect(
        isinstance(reply.body, list) and sorted(reply.body) == sorted(ids),
        f"the created ids {ids}",
        reply.describe(),
    )
    for entity_id in ids:
        expect_status(await ctx.retrieve(entity_id), 200, what=f"for {entity_id}")


@check("batch-create-207", "5.6.7; 6.14.3.1; 5.2.16", "Batch create with a clash is 207")
async def create_partial(ctx: ProbeContext) -> None:
    existing, new = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(existing, temperature=1))
    reply = await _batch(ctx, "create", [ctx.entity(i, temperature=2) for i in (existing, new)])
    _expect_batch_result(reply, {new}, {existing: 409})


@check("batch-upsert-201", "5.6.8; 6.15.3.1", "Batch upsert creating some answers 201")
async def upsert_created(ctx: ProbeContext) -> None:
    existing, new = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(existing, temperature=1))
    reply = await _batch(ctx, "upsert", [ctx.entity(i, temperature=5) for i in (existing, new)])
    expect_status(reply, 201, what="with the ids of the created entities")
    expect(
        isinstance(reply.body, list) and new in reply.body,
        f"an array of created ids holding {new}",
        reply.describe(),
    )
    entity = (await ctx.retrieve(existing)).body
    value = entity.get("temperature", {}).get("value") if isinstance(entity, dict) else None
    expect(value == 5, f"{existing} upserted to temperature 5", repr(entity))


@check("batch-update-204", "5.6.9; 6.16.3.1", "Batch update answers 204")
async def update(ctx: ProbeContext) -> None:
    ids = [ctx.new_id(), ctx.new_id()]
    for entity_id in ids:
        await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    reply = await _batch(ctx, "update", [ctx.entity(i, temperature=9) for i in ids])
    expect_status(reply, 204)
    entity = (await ctx.retrieve(ids[1])).body
    value = entity.get("temperature", {}).get("value") if isinstance(entity, dict) else None
    expect(value == 9, f"{ids[1]} updated to temperature 9", repr(entity))


@check("batch-update-207", "5.6.9; 6.16.3.1; 5.2.16", "Batch update of a missing id is 207")
async def update_missing(ctx: ProbeContext) -> None:
    existing, missing = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(existing, temperature=1))
    reply = await _batch(ctx, "update", [ctx.entity(i, temperature=3) for i in (existing, missing)])
    _expect_batch_result(reply, {existing}, {missing: 404})
    expect_problem(await ctx.retrieve(missing), 404, "ResourceNotFound")


@check("batch-delete-204", "5.6.10; 6.17.3.1", "Batch delete answers 204")
async def delete(ctx: ProbeContext) -> None:
    ids = [ctx.new_id(), ctx.new_id()]
    for entity_id in ids:
        await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    expect_status(await _batch(ctx, "delete", ids), 204)
    for entity_id in ids:
        expect_problem(await ctx.retrieve(entity_id), 404, "ResourceNotFound")


@check("batch-delete-207", "5.6.10; 6.17.3.1; 5.2.16", "Batch delete of a missing id is 207")
async def delete_missing(ctx: ProbeContext) -> None:
    existing, missing = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(existing, temperature=1))
    reply = await _batch(ctx, "delete", [existing, missing])
    _expect_batch_result(reply, {existing}, {missing: 404})
