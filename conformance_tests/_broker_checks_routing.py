"""Routing and HTTP binding checks (clause 6.3-6.7) and @context management checks
(clause 6.29-6.30): trailing slashes, missing ids, merge-patch, Accept precedence, IRIs in
paths, unknown parameters, the tenant header of NonexistentTenant, the core context."""

from __future__ import annotations

from urllib.parse import quote

from conformance_tests._broker_framework import (
    CORE_CONTEXT,
    Check,
    NotSupported,
    ProbeContext,
    attribute,
    expect,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["CONTEXT_API_CHECKS", "ROUTING_CHECKS"]

ROUTING_CHECKS: list[Check] = []
CONTEXT_API_CHECKS: list[Check] = []
routing_check = registrar(ROUTING_CHECKS, "routing")
context_api_check = registrar(CONTEXT_API_CHECKS, "jsonld-contexts")

MERGE_PATCH = "application/merge-patch+json"
PROBE_TYPE_BASE = "https://example.org/ngsi-ld/conformance/"


def _entity_path(entity_id: str) -> str:
    return f"entities/{quote(entity_id, safe='')}"


@routing_check(
    "routing-attrs-trailing-slash", "6.6.3.1", "POST /entities/{id}/attrs/ appends attributes"
)
async def attrs_trailing_slash(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    reply = await ctx.request(
        "POST",
        _entity_path(entity_id) + "/attrs/",
        json={"humidity": {"type": "Property", "value": 40}},
    )
    expect_status(reply, 204, what="as for /attrs without the slash")
    humidity = attribute(await ctx.retrieve(entity_id), "humidity")
    expect(humidity.get("value") == 40, "humidity 40 appended", repr(humidity))


@routing_check(
    "routing-collection-trailing-slash",
    "6.15.3.1",
    "POST /entityOperations/upsert/ answers in place, without a redirect",
)
async def collection_trailing_slash(ctx: ProbeContext) -> None:
    body = ctx.entity(temperature=1)
    ctx.track(body["id"])
    reply = await ctx.request("POST", "entityOperations/upsert/", json=[body])
    expect_status(reply, 201, 204, what="(not a redirect to the path without the slash)")


@routing_check("routing-no-entity-id-400", "6.5.3.4", "PATCH /entities/ without an id is 400")
async def no_entity_id(ctx: ProbeContext) -> None:
    reply = await ctx.request("PATCH", "entities/", json={"temperature": {"value": 1}})
    expect_problem(reply, 400, "BadRequestData", "InvalidRequest")


@routing_check(
    "routing-merge-patch-json", "6.5.3.4", "Merge Entity takes application/merge-patch+json"
)
async def merge_patch_json(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    reply = await ctx.request(
        "PATCH",
        _entity_path(entity_id),
        content=b'{"temperature": {"type": "Property", "value": 2}}',
        headers={"Content-Type": MERGE_PATCH},
    )
    expect_status(reply, 204)
    temperature = attribute(await ctx.retrieve(entity_id), "temperature")
    expect(temperature.get("value") == 2, "temperature 2 after the merge", repr(temperature))


@routing_check(
    "routing-accept-equal-q", "6.3.4", "Between equal q values JSON comes before JSON-LD"
)
async def accept_equal_q(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    accept = "application/ld+json, application/json"
    reply = await ctx.request("GET", _entity_path(entity_id), headers={"Accept": accept})
    expect_status(reply, 200)
    expect(
        reply.media_type == "application/json", "Content-Type application/json", reply.describe()
    )


@routing_check("routing-accept-q-zero", "6.3.4", "q=0 excludes a media type")
async def accept_q_zero(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    accept = "application/json;q=0, application/ld+json"
    reply = await ctx.request("GET", _entity_path(entity_id), headers={"Accept": accept})
    expect_status(reply, 200)
    expect(
        reply.media_type == "application/ld+json",
        "Content-Type application/ld+json",
        reply.describe(),
    )


@routing_check("routing-type-iri", "6.26.3.1", "/types/{type} takes a percent-encoded IRI")
async def type_iri(ctx: ProbeContext) -> None:
    type_iri = PROBE_TYPE_BASE + ctx.entity_type
    entity_id = ctx.new_id()
    await ctx.create_ok({"id": entity_id, "type": type_iri})
    reply = await ctx.request("GET", "types/" + quote(type_iri, safe=""))
    expect_status(reply, 200, what="with the EntityTypeInfo")
    expect(
        isinstance(reply.body, dict) and reply.body.get("id") == type_iri,
        f"an EntityTypeInfo with id {type_iri}",
        reply.describe(),
    )


@routing_check("routing-unknown-parameter-400", "5.5.2", "An unknown query parameter is 400")
async def unknown_parameter(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    reply = await ctx.request("GET", _entity_path(entity_id), params={"optoins": "keyValues"})
    expect_problem(reply, 400, "InvalidRequest", "BadRequestData")


@routing_check("routing-array-body-400", "6.4.3.1", "Create Entity with body [] is 400")
async def array_body(ctx: ProbeContext) -> None:
    reply = await ctx.request("POST", "entities", json=[])
    expect_problem(reply, 400, "InvalidRequest", "BadRequestData")


@routing_check(
    "routing-nonexistent-tenant-header",
    "5.5.10; 6.3.14",
    "NonexistentTenant echoes the NGSILD-Tenant header",
)
async def nonexistent_tenant_header(ctx: ProbeContext) -> None:
    absent = f"conformance-{ctx.run_id}-absent"
    reply = await ctx.request("GET", _entity_path(ctx.new_id()), tenant=absent)
    if reply.status == 501:
        raise NotSupported(f"no multi-tenancy: {reply.describe()}")
    expect_problem(reply, 404, "NonexistentTenant")
    echoed = reply.headers.get("ngsild-tenant")
    expect(echoed == absent, f"NGSILD-Tenant: {absent}", f"NGSILD-Tenant: {echoed or '(none)'}")


@context_api_check(
    "jsonld-contexts-core-listed",
    "6.29.3.2",
    "details=true lists the core context with kind, createdAt and numberOfHits",
)
async def core_listed(ctx: ProbeContext) -> None:
    reply = await ctx.request("GET", "jsonldContexts", params={"details": "true"})
    if reply.status in (404, 405, 501):
        raise NotSupported(f"no @context management API (clause 6.29): {reply.describe()}")
    expect_status(reply, 200)
    entries = reply.body if isinstance(reply.body, list) else []
    core = [e for e in entries if isinstance(e, dict) and e.get("URL") == CORE_CONTEXT]
    expect(bool(core), f"an entry with URL {CORE_CONTEXT}", reply.describe())
    missing = [key for key in ("kind", "createdAt", "numberOfHits") if key not in core[0]]
    expect(not missing, "kind, createdAt and numberOfHits", f"{core[0]} lacks {missing}")


@context_api_check(
    "jsonld-contexts-implicit-kind", "6.29.3.2", "kind=ImplicitlyCreated is a valid filter"
)
async def implicit_kind(ctx: ProbeContext) -> None:
    reply = await ctx.request("GET", "jsonldContexts", params={"kind": "ImplicitlyCreated"})
    if reply.status in (404, 405, 501):
        raise NotSupported(f"no @context management API (clause 6.29): {reply.describe()}")
    expect_status(reply, 200, what="with a JSON array")
    expect(isinstance(reply.body, list), "a JSON array", reply.describe())


@context_api_check(
    "jsonld-contexts-core-not-deleted", "6.30.3.2", "Deleting the core context is 400"
)
async def core_not_deleted(ctx: ProbeContext) -> None:
    reply = await ctx.request("DELETE", "jsonldContexts/" + quote(CORE_CONTEXT, safe=""))
    if reply.status in (405, 501):
        raise NotSupported(f"no @context management API (clause 6.30): {reply.describe()}")
    expect_problem(reply, 400, "BadRequestData", "InvalidRequest")
