"""Checks of Retrieve Entity and Query Entities beyond selection (clauses 4.21, 5.7.1, 5.2.33,
6.3.7, 6.3.10, 6.3.15): projection with pick and omit, instance selection by datasetId, the
parameter checks, paging links and the GeoJSON body; the source identity (5.15) and the
version preference (6.3.21)."""

from __future__ import annotations

from urllib.parse import quote

from conformance_tests._broker_framework import (
    Check,
    ProbeContext,
    Reply,
    expect,
    expect_ids,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["RETRIEVE_CHECKS"]

RETRIEVE_CHECKS: list[Check] = []
check = registrar(RETRIEVE_CHECKS, "retrieve")

_RAW = "urn:ngsi-ld:Dataset:raw"


async def _seed(ctx: ProbeContext) -> str:
    """One entity of the run's type with two attributes; its id."""
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=21, name="aula"))
    return entity_id


def _body(reply: Reply) -> object:
    expect_status(reply, 200, what="with the entity")
    return reply.body


@check("retrieve-pick", "4.21; 6.5.3.1", "pick keeps only the named members")
async def pick(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    body = _body(await ctx.retrieve(entity_id, pick="id,temperature", options="keyValues"))
    expect(body == {"id": entity_id, "temperature": 21}, "only id and temperature", str(body))


@check("retrieve-omit", "4.21; 6.5.3.1", "omit leaves the named members out")
async def omit(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    body = _body(await ctx.retrieve(entity_id, omit="type,temperature", options="keyValues"))
    expect(body == {"id": entity_id, "name": "aula"}, "id and name only", str(body))


@check("retrieve-pick-omit-400", "4.21; 6.5.3.1", "pick together with omit is 400")
async def pick_with_omit(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    expect_problem(await ctx.retrieve(entity_id, pick="id", omit="name"), 400, "BadRequestData")


@check("retrieve-pick-nothing-404", "4.21; 5.7.1.4", "pick of attributes it lacks is 404")
async def pick_nothing(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    expect_problem(await ctx.retrieve(entity_id, pick="humidity"), 404, "ResourceNotFound")


@check("retrieve-attrs-core-400", "5.7.1.4; 6.5.3.1", "attrs=id,type is 400")
async def attrs_core(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    expect_problem(await ctx.retrieve(entity_id, attrs="id,type"), 400, "BadRequestData")


@check("retrieve-format-precedence", "6.3.7; 6.5.3.1", "format wins over options")
async def format_precedence(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    reply = await ctx.retrieve(entity_id, options="keyValues", format="normalized", pick="name")
    body = _body(reply)
    wanted = {"name": {"type": "Property", "value": "aula"}}
    expect(body == wanted, f"the normalized {wanted}", str(body))


@check("retrieve-dataset-id", "4.5.5; 6.5.3.1", "datasetId shows only those instances")
async def dataset_id(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    instances = [
        {"type": "Property", "value": 21},
        {"type": "Property", "value": 20.6, "datasetId": _RAW},
    ]
    await ctx.create_ok(ctx.entity(entity_id) | {"temperature": instances})
    raw = _body(await ctx.retrieve(entity_id, datasetId=_RAW, pick="temperature"))
    expect(raw == {"temperature": instances[1]}, f"only the instance of {_RAW}", str(raw))
    default = _body(await ctx.retrieve(entity_id, datasetId="@none", pick="temperature"))
    expect(default == {"temperature": instances[0]}, "only the default instance", str(default))


@check("query-pick-pipe", "4.21; 6.4.3.2", "pick separates names with a pipe as with a comma")
async def query_pick_pipe(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    params = {"type": ctx.entity_type, "pick": "id|name", "options": "keyValues"}
    reply = await ctx.request("GET", "entities", params=params)
    body = _body(reply)
    expect(body == [{"id": entity_id, "name": "aula"}], "id and name of the entity", str(body))


@check("query-type-star", "4.17; 6.4.3.2", "type=* selects entities of any type")
async def type_star(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    params = {"type": "*", "id": entity_id}
    expect_ids(await ctx.request("GET", "entities", params=params), [entity_id])


@check("query-selector-type-400", "5.2.33; 6.23.3.1", "an EntitySelector without type is 400")
async def selector_without_type(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    body = {"type": "Query", "entities": [{"id": entity_id}]}
    reply = await ctx.request("POST", "entityOperations/query", json=body)
    expect_problem(reply, 400, "BadRequestData")


@check("query-selector-id-precedence", "5.2.33; 6.23.3.1", "an id wins over idPattern")
async def selector_id_precedence(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    selector = {"id": entity_id, "idPattern": "^nothing$", "type": ctx.entity_type}
    body = {"type": "Query", "entities": [selector]}
    expect_ids(await ctx.request("POST", "entityOperations/query", json=body), [entity_id])


@check("query-near-two-distances-400", "4.10; 6.4.3.2", "near with two distances is 400")
async def near_two_distances(ctx: ProbeContext) -> None:
    params = {
        "type": ctx.entity_type,
        "georel": "near;maxDistance==10;minDistance==1",
        "geometry": "Point",
        "coordinates": "[11.25,43.77]",
    }
    expect_problem(await ctx.request("GET", "entities", params=params), 400, "BadRequestData")


@check("query-geometry-property-400", "6.3.15; 6.4.3.2", "geometryProperty without GeoJSON is 400")
async def geometry_property(ctx: ProbeContext) -> None:
    params = {"type": ctx.entity_type, "geometryProperty": "location"}
    expect_problem(await ctx.request("GET", "entities", params=params), 400, "BadRequestData")


@check("query-geojson-context", "6.3.15; 6.4.3.2", "a GeoJSON answer holds its @context")
async def geojson_context(ctx: ProbeContext) -> None:
    await _seed(ctx)
    reply = await ctx.request(
        "GET",
        "entities",
        params={"type": ctx.entity_type},
        headers={"Accept": "application/geo+json"},
    )
    body = _body(reply)
    expect(
        isinstance(body, dict) and body.get("type") == "FeatureCollection" and "@context" in body,
        "a FeatureCollection with an @context member",
        reply.describe(),
    )


@check("query-next-link", "5.5.9; 6.3.10", 'a page links the next one with rel="next"')
async def next_link(ctx: ProbeContext) -> None:
    await _seed(ctx)
    await _seed(ctx)
    reply = await ctx.request("GET", "entities", params={"type": ctx.entity_type, "limit": "1"})
    expect_status(reply, 200, what="with the first page")
    link = reply.headers.get("link", "")
    wanted = "offset=1"
    expect(
        'rel="next"' in link and f"type={ctx.entity_type}" in link and wanted in link,
        f'a Link with rel="next" to the request with {wanted}',
        link or "no Link header",
    )


@check("info-source-identity", "5.15; 5.2.40", "GET /info/sourceIdentity describes the broker")
async def source_identity(ctx: ProbeContext) -> None:
    await _seed(ctx)
    reply = await ctx.request("GET", "info/sourceIdentity")
    body = _body(reply)
    members = {"id", "type", "contextSourceAlias", "contextSourceUptime", "contextSourceTimeAt"}
    expect(
        isinstance(body, dict)
        and body.get("type") == "ContextSourceIdentity"
        and members <= set(body),
        f"a ContextSourceIdentity with {', '.join(sorted(members))}",
        reply.describe(),
    )


@check("version-preference", "6.3.21", "Prefer: ngsi-ld= is answered with Preference-Applied")
async def version_preference(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    reply = await ctx.request(
        "GET", f"entities/{quote(entity_id, safe='')}", headers={"Prefer": "ngsi-ld=1.8"}
    )
    expect_status(reply, 200, what="with the entity")
    applied = reply.headers.get("preference-applied", "")
    expect(
        applied.startswith("ngsi-ld="),
        "a Preference-Applied: ngsi-ld=<version> header",
        applied or "no Preference-Applied header",
    )


@check("version-fallback", "4.3.6.8", "An earlier preferred version gets the tables' fallbacks")
async def version_fallback(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    settings = {"type": "JsonProperty", "json": {"mode": "eco"}}
    await ctx.create_ok(ctx.entity(entity_id, settings=settings))
    reply = await ctx.request(
        "GET", f"entities/{quote(entity_id, safe='')}", headers={"Prefer": "ngsi-ld=1.7"}
    )
    body = _body(reply)
    shown = body.get("settings") if isinstance(body, dict) else None
    expect(
        reply.headers.get("preference-applied") == "ngsi-ld=1.7"
        and shown == {"type": "Property", "value": {"mode": "eco"}},
        "Preference-Applied: ngsi-ld=1.7 and the JsonProperty reformatted as a Property",
        reply.describe(),
    )


@check("version-malformed", "6.3.21", "A malformed ngsi-ld preference is ignored, not an error")
async def version_malformed(ctx: ProbeContext) -> None:
    entity_id = await _seed(ctx)
    reply = await ctx.request(
        "GET", f"entities/{quote(entity_id, safe='')}", headers={"Prefer": "ngsi-ld=1.3-1.6"}
    )
    expect_status(reply, 200, what="with the entity, the preference ignored (RFC 7240)")
