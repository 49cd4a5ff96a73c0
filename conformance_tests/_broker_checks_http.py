"""HTTP binding checks: @context and media types (6.3.4-6.3.6), errors (5.5.2-5.5.4, 6.3.2-6.3.3),
tenants (4.14, 5.5.10, 6.3.14)."""

from __future__ import annotations

from urllib.parse import quote, urljoin

import orjson

from conformance_tests._broker_framework import (
    CORE_CONTEXT,
    ERRORS_BASE,
    JSONLD_CONTEXT_REL,
    Check,
    NotSupported,
    ProbeContext,
    attribute,
    entity_ids,
    expect,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["CONTEXT_CHECKS", "ERROR_CHECKS", "TENANT_CHECKS"]

CONTEXT_CHECKS: list[Check] = []
ERROR_CHECKS: list[Check] = []
TENANT_CHECKS: list[Check] = []
context_check = registrar(CONTEXT_CHECKS, "context")
error_check = registrar(ERROR_CHECKS, "errors")
tenant_check = registrar(TENANT_CHECKS, "tenants")

TERM = "probeReading"
TERM_IRI = "https://example.org/ngsi-ld/conformance/probeReading"
LD_JSON = {"Content-Type": "application/ld+json", "Accept": "application/ld+json"}


def _link(url: str) -> str:
    return f'<{url}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'


@context_check("context-ldjson-body", "6.3.5; 5.6.1", "An ld+json body brings its @context")
async def ld_json_body(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    body = ctx.entity(entity_id, **{TERM: 7})
    body["@context"] = [{TERM: TERM_IRI}, CORE_CONTEXT]
    ctx.track(entity_id)
    reply = await ctx.request("POST", "entities", content=orjson.dumps(body), headers=LD_JSON)
    expect_status(reply, 201)
    # Without the user @context, the term compacts to its full IRI (core context only).
    attribute(await ctx.retrieve(entity_id), TERM_IRI)


@context_check(
    "context-link-compaction",
    "6.3.5; 5.5.7; 5.13.2",
    "A user @context in Link names the attributes",
)
async def link_compaction(ctx: ProbeContext) -> None:
    hosted = await ctx.request("POST", "jsonldContexts", json={"@context": {TERM: TERM_IRI}})
    if hosted.status in (404, 405, 501):
        raise NotSupported(f"the broker hosts no @context (clause 5.13.2): {hosted.describe()}")
    expect_status(hosted, 201, what="with the Location of the hosted @context")
    location = hosted.headers.get("location", "")
    marker = "/jsonldContexts/"
    if marker in location:
        local_id = location.split(marker, 1)[1]
        ctx.track_context(f"jsonldContexts/{quote(local_id, safe='')}")
    expect(marker in location, "the hosted @context's URL in Location", hosted.describe())
    # Relative (like Create Entity's) or absolute: either names the context under the API.
    url = urljoin(ctx.client.endpoint.base_url, location)
    entity_id = ctx.new_id()
    ctx.track(entity_id)
    created = await ctx.request(
        "POST", "entities", json=ctx.entity(entity_id, **{TERM: 7}), headers={"Link": _link(url)}
    )
    expect_status(created, 201)
    attribute(await ctx.retrieve(entity_id), TERM_IRI)
    path = f"entities/{quote(entity_id, safe='')}"
    reply = await ctx.request("GET", path, headers={"Link": _link(url)})
    reading = attribute(reply, TERM)
    expect(reading.get("value") == 7, f"{TERM} 7 under the user @context", reply.describe())


@context_check("context-ldjson-response", "6.3.6; 5.7.1", "Accept ld+json puts @context in body")
async def ld_json_response(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    path = f"entities/{quote(entity_id, safe='')}"
    reply = await ctx.request("GET", path, headers={"Accept": "application/ld+json"})
    expect_status(reply, 200)
    expect(
        reply.media_type == "application/ld+json"
        and isinstance(reply.body, dict)
        and "@context" in reply.body,
        "Content-Type application/ld+json and an @context member",
        reply.describe(),
    )


@context_check("context-json-link-header", "6.3.6; 5.7.1", "Accept json gives the Link header")
async def json_link_header(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    reply = await ctx.retrieve(entity_id)
    expect_status(reply, 200)
    link = reply.headers.get("link", "")
    expect(
        reply.media_type == "application/json"
        and isinstance(reply.body, dict)
        and "@context" not in reply.body
        and JSONLD_CONTEXT_REL in link,
        f'application/json without @context, and a Link header rel="{JSONLD_CONTEXT_REL}"',
        f"Link: {link or '(none)'}; {reply.describe()}",
    )


@context_check("context-ldjson-with-link-400", "6.3.5", "ld+json together with Link is 400")
async def ld_json_with_link(ctx: ProbeContext) -> None:
    body = ctx.entity(temperature=1)
    body["@context"] = CORE_CONTEXT
    ctx.track(body["id"])
    headers = {**LD_JSON, "Link": _link(CORE_CONTEXT)}
    reply = await ctx.request("POST", "entities", content=orjson.dumps(body), headers=headers)
    expect_problem(reply, 400, "BadRequestData")


@context_check("context-content-type-415", "6.3.4", "A body of another media type is 415")
async def wrong_content_type(ctx: ProbeContext) -> None:
    body = ctx.entity(temperature=1)
    ctx.track(body["id"])
    reply = await ctx.request(
        "POST", "entities", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
    )
    expect_status(reply, 415)


@context_check("context-accept-406", "6.3.4", "An Accept the broker cannot serve is 406")
async def wrong_accept(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    path = f"entities/{quote(entity_id, safe='')}"
    expect_status(await ctx.request("GET", path, headers={"Accept": "text/html"}), 406)


@error_check(
    "errors-problem-details", "5.5.2; 5.5.3; 6.3.3", "Errors are ProblemDetails (RFC 7807)"
)
async def problem_details(ctx: ProbeContext) -> None:
    reply = await ctx.retrieve(ctx.new_id())
    body = expect_problem(reply, 404, "ResourceNotFound")
    expect(
        reply.media_type in ("application/json", "application/problem+json"),
        "Content-Type application/json",
        reply.describe(),
    )
    expect(
        isinstance(body.get("title"), str) and body.get("status", 404) == 404,
        'a "title" string and a "status" (if given) equal to 404',
        reply.describe(),
    )


@error_check(
    "errors-invalid-json-400", "5.5.4; 6.3.2; 6.4.3.1", "Malformed JSON is 400 InvalidRequest"
)
async def invalid_json(ctx: ProbeContext) -> None:
    reply = await ctx.request(
        "POST",
        "entities",
        content=b'{"id": "urn:ngsi-ld:ConformanceProbe:x", "type": ',
        headers={"Content-Type": "application/json"},
    )
    expect_problem(reply, 400, "InvalidRequest")


@error_check("errors-path-id-400", "5.7.1; 6.5.3.1", "An entity id that is no URI is 400")
async def path_id_not_uri(ctx: ProbeContext) -> None:
    reply = await ctx.request("GET", "entities/not%20a%20uri")
    expect_problem(reply, 400, "BadRequestData")


def _tenant_unsupported(reply_type: object, status: int) -> bool:
    names = ("NoMultiTenantSupport", "OperationNotSupported")
    return status == 501 or reply_type in {ERRORS_BASE + name for name in names}


@tenant_check("tenants-isolation", "4.14; 6.3.14", "An entity of one tenant is not in another")
async def isolation(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    anchor = ctx.entity(temperature=0)
    other = await ctx.create(anchor, tenant=ctx.other_tenant)
    body_type = other.body.get("type") if isinstance(other.body, dict) else None
    if _tenant_unsupported(body_type, other.status):
        raise NotSupported(f"no multi-tenancy: {other.describe()}")
    expect_status(other, 201, what=f"creating an entity in tenant {ctx.other_tenant}")
    path = f"entities/{quote(entity_id, safe='')}"
    reply = await ctx.request("GET", path, tenant=ctx.other_tenant)
    expect_problem(reply, 404, "ResourceNotFound")
    listed = entity_ids(
        await ctx.request(
            "GET", "entities", params={"type": ctx.entity_type}, tenant=ctx.other_tenant
        )
    )
    expect(
        entity_id not in listed and anchor["id"] in listed,
        f"only {anchor['id']} in tenant {ctx.other_tenant}",
        repr(listed),
    )


@tenant_check("tenants-same-id", "4.14; 6.3.14", "One id can live in two tenants apart")
async def same_id(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    other = await ctx.create(ctx.entity(entity_id, temperature=2), tenant=ctx.other_tenant)
    body_type = other.body.get("type") if isinstance(other.body, dict) else None
    if _tenant_unsupported(body_type, other.status):
        raise NotSupported(f"no multi-tenancy: {other.describe()}")
    expect_status(other, 201, what=f"creating the same id in tenant {ctx.other_tenant}")
    mine = attribute(await ctx.retrieve(entity_id), "temperature")
    path = f"entities/{quote(entity_id, safe='')}"
    theirs = attribute(await ctx.request("GET", path, tenant=ctx.other_tenant), "temperature")
    expect(
        mine.get("value") == 1 and theirs.get("value") == 2,
        "temperature 1 in this tenant and 2 in the other",
        f"{mine!r} and {theirs!r}",
    )


@tenant_check("tenants-unknown-404", "5.5.10; 6.3.2", "Reading an unknown tenant is 404")
async def unknown_tenant(ctx: ProbeContext) -> None:
    absent = f"conformance-{ctx.run_id}-absent"
    reply = await ctx.request("GET", "entities", params={"type": ctx.entity_type}, tenant=absent)
    body_type = reply.body.get("type") if isinstance(reply.body, dict) else None
    if _tenant_unsupported(body_type, reply.status):
        raise NotSupported(f"no multi-tenancy: {reply.describe()}")
    expect_problem(reply, 404, "NonexistentTenant")
