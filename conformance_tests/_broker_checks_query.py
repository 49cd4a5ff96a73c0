"""Checks of Query Entities (clauses 5.7.2, 6.4.3.2): q (4.9), geo (4.10), pages and counts."""

from __future__ import annotations

from conformance_tests._broker_framework import (
    Check,
    ProbeContext,
    entity_ids,
    expect,
    expect_ids,
    expect_problem,
    registrar,
)

__all__ = ["QUERY_CHECKS"]

QUERY_CHECKS: list[Check] = []
check = registrar(QUERY_CHECKS, "query")

# Three entities of the run's type in Firenze, Prato and Pisa, one of another type.
_SEED = (
    ("alpha-one", 10, (11.2558, 43.7696)),
    ("beta-two", 20, (11.0963, 43.8777)),
    ("alpha-three", 30, (10.4017, 43.7228)),
)


async def _seed(ctx: ProbeContext) -> list[str]:
    """Create the query fixture; the ids of Firenze, Prato and Pisa."""
    ids = []
    for name, temperature, point in _SEED:
        entity_id = ctx.new_id()
        location = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": list(point)}}
        await ctx.create_ok(
            ctx.entity(entity_id, name=name, temperature=temperature, location=location)
        )
        ids.append(entity_id)
    other = ctx.entity(temperature=20, name="beta-two")
    other["type"] = ctx.entity_type + "Other"
    await ctx.create_ok(other)
    return ids


async def _query(ctx: ProbeContext, **params: str) -> list[str]:
    return entity_ids(await ctx.request("GET", "entities", params=params))


@check("query-type", "5.7.2; 6.4.3.2", "type= selects the entities of a type")
async def by_type(ctx: ProbeContext) -> None:
    ids = await _seed(ctx)
    expect_ids(await ctx.request("GET", "entities", params={"type": ctx.entity_type}), ids)


@check("query-id-list", "5.7.2; 6.4.3.2", "id= selects a list of ids")
async def by_ids(ctx: ProbeContext) -> None:
    firenze, _, pisa = await _seed(ctx)
    params = {"id": f"{firenze},{pisa}", "type": ctx.entity_type}
    expect_ids(await ctx.request("GET", "entities", params=params), [firenze, pisa])


@check("query-q-equal", "4.9; 5.7.2", "q with == on a number")
async def q_equal(ctx: ProbeContext) -> None:
    _, prato, _ = await _seed(ctx)
    params = {"type": ctx.entity_type, "q": "temperature==20"}
    expect_ids(await ctx.request("GET", "entities", params=params), [prato])


@check("query-q-greater", "4.9; 5.7.2", "q with >")
async def q_greater(ctx: ProbeContext) -> None:
    _, prato, pisa = await _seed(ctx)
    params = {"type": ctx.entity_type, "q": "temperature>15"}
    expect_ids(await ctx.request("GET", "entities", params=params), [prato, pisa])


@check("query-q-range", "4.9; 5.7.2", "q with a range min..max")
async def q_range(ctx: ProbeContext) -> None:
    firenze, prato, _ = await _seed(ctx)
    params = {"type": ctx.entity_type, "q": "temperature==5..25"}
    expect_ids(await ctx.request("GET", "entities", params=params), [firenze, prato])


@check("query-q-pattern", "4.9; 5.7.2", "q with the pattern operator ~=")
async def q_pattern(ctx: ProbeContext) -> None:
    firenze, _, pisa = await _seed(ctx)
    params = {"type": ctx.entity_type, "q": "name~=^alpha"}
    expect_ids(await ctx.request("GET", "entities", params=params), [firenze, pisa])


@check("query-q-invalid-400", "4.9; 5.7.2; 5.5.2", "A q syntax error is 400 BadRequestData")
async def q_invalid(ctx: ProbeContext) -> None:
    reply = await ctx.request(
        "GET", "entities", params={"type": ctx.entity_type, "q": "temperature>>>;("}
    )
    expect_problem(reply, 400, "BadRequestData")


@check("query-no-selector-400", "5.7.2; 6.4.3.2", "A query with no selector is 400")
async def no_selector(ctx: ProbeContext) -> None:
    expect_problem(await ctx.request("GET", "entities"), 400, "BadRequestData")


@check("query-attrs", "5.7.2; 6.4.3.2", "attrs= projects the attributes of the matches")
async def attrs(ctx: ProbeContext) -> None:
    ids = await _seed(ctx)
    reply = await ctx.request(
        "GET", "entities", params={"type": ctx.entity_type, "attrs": "temperature"}
    )
    expect_ids(reply, ids)
    for entity in reply.body:
        expect(
            "temperature" in entity and "name" not in entity and "location" not in entity,
            "each entity with temperature only",
            repr(entity),
        )


@check("query-limit-offset", "5.5.9; 6.3.10", "limit and offset page through the matches")
async def pages(ctx: ProbeContext) -> None:
    ids = await _seed(ctx)
    first = await _query(ctx, type=ctx.entity_type, limit="2")
    second = await _query(ctx, type=ctx.entity_type, limit="2", offset="2")
    expect(len(first) == 2, "2 entities with limit=2", repr(first))
    expect(len(second) == 1, "1 entity with limit=2&offset=2", repr(second))
    expect(
        sorted(first + second) == sorted(ids),
        f"the pages together give {sorted(ids)} once each",
        repr(first + second),
    )


@check("query-count", "6.3.13", "count=true gives NGSILD-Results-Count")
async def count(ctx: ProbeContext) -> None:
    await _seed(ctx)
    reply = await ctx.request(
        "GET", "entities", params={"type": ctx.entity_type, "count": "true", "limit": "1"}
    )
    header = reply.headers.get("ngsild-results-count")
    expect(header == "3", "NGSILD-Results-Count: 3", f"{header!r} ({reply.describe()})")
    expect(len(entity_ids(reply)) == 1, "1 entity with limit=1", reply.describe())


@check("query-geo-near", "4.10; 5.7.2", "georel=near;maxDistance on Points")
async def geo_near(ctx: ProbeContext) -> None:
    firenze, prato, _ = await _seed(ctx)
    params = {
        "type": ctx.entity_type,
        "georel": "near;maxDistance==25000",
        "geometry": "Point",
        "coordinates": "[11.2558,43.7696]",
    }
    expect_ids(await ctx.request("GET", "entities", params=params), [firenze, prato])


@check("query-geo-within", "4.10; 5.7.2", "georel=within a Polygon")
async def geo_within(ctx: ProbeContext) -> None:
    firenze, prato, _ = await _seed(ctx)
    params = {
        "type": ctx.entity_type,
        "georel": "within",
        "geometry": "Polygon",
        "coordinates": "[[[10.9,43.6],[11.4,43.6],[11.4,44.0],[10.9,44.0],[10.9,43.6]]]",
    }
    expect_ids(await ctx.request("GET", "entities", params=params), [firenze, prato])


@check("query-system-attrs-400", "5.7.2.4", "q over system attributes alone is 400")
async def system_attributes_alone(ctx: ProbeContext) -> None:
    await _seed(ctx)
    params = {"q": 'modifiedAt>"2000-01-01T00:00:00Z"'}
    expect_problem(await ctx.request("GET", "entities", params=params), 400, "BadRequestData")


@check("query-expand-values", "4.9; 6.4.3.2", "expandValues compares q values as IRIs")
async def expand_values(ctx: ProbeContext) -> None:
    as_iri, as_term = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(as_iri, category=_DEFAULT_VOCAB + "Grocery"))
    await ctx.create_ok(ctx.entity(as_term, category="Grocery"))
    params = {"type": ctx.entity_type, "q": "category==Grocery", "expandValues": "category"}
    expect_ids(await ctx.request("GET", "entities", params=params), [as_iri])


_DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
_FIRENZE = "[11.2558,43.7696]"


@check("query-order-distance", "4.23; 6.4.3.2", "orderBy=location;dist-asc|dist-desc")
async def order_by_distance(ctx: ProbeContext) -> None:
    firenze, prato, pisa = await _seed(ctx)
    params = {"type": ctx.entity_type, "orderFrom": _FIRENZE}
    nearest = await _query(ctx, **params, orderBy="location;dist-asc")
    expect(nearest == [firenze, prato, pisa], "Firenze, Prato, Pisa (nearest first)", str(nearest))
    farthest = await _query(ctx, **params, orderBy="location;dist-desc")
    expect(farthest == [pisa, prato, firenze], "Pisa, Prato, Firenze", str(farthest))


@check("query-ordering-member", "5.2.43; 6.23.3.1", "a Query's ordering orders the answer")
async def ordering_member(ctx: ProbeContext) -> None:
    firenze, prato, pisa = await _seed(ctx)
    ordering = {"orderBy": ["location;dist-desc"], "coordinates": [11.2558, 43.7696]}
    body = {"type": "Query", "entities": [{"type": ctx.entity_type}], "ordering": ordering}
    ids = entity_ids(await ctx.request("POST", "entityOperations/query", json=body))
    expect(ids == [pisa, prato, firenze], "Pisa, Prato, Firenze (farthest first)", str(ids))


@check("query-order-from-400", "4.23; 6.4.3.2", "an order by distance without orderFrom is 400")
async def order_without_reference(ctx: ProbeContext) -> None:
    params = {"type": ctx.entity_type, "orderBy": "location;dist-asc"}
    expect_problem(await ctx.request("GET", "entities", params=params), 400, "BadRequestData")
