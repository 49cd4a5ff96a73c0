"""Checks of entity CRUD (clauses 5.6.1, 5.6.6, 5.7.1) and attribute operations (5.6.2-5.6.5)."""

from __future__ import annotations

from urllib.parse import quote, unquote

from conformance_tests._broker_framework import (
    Check,
    CheckFailed,
    ProbeContext,
    attribute,
    expect,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["ATTRIBUTE_CHECKS", "ENTITY_CHECKS"]

ENTITY_CHECKS: list[Check] = []
ATTRIBUTE_CHECKS: list[Check] = []
entity_check = registrar(ENTITY_CHECKS, "entity")
attribute_check = registrar(ATTRIBUTE_CHECKS, "attributes")

TEMPERATURE = {"type": "Property", "value": 21.5, "unitCode": "CEL"}


def _path(entity_id: str, *rest: str) -> str:
    return "/".join(["entities", quote(entity_id, safe=""), *rest])


@entity_check("entity-create-201", "5.6.1; 6.4.3.1", "Create Entity answers 201 with Location")
async def create_201(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    reply = await ctx.create(ctx.entity(entity_id, temperature=TEMPERATURE))
    expect_status(reply, 201)
    location = unquote(reply.headers.get("location", ""))
    expect(
        location.endswith(f"/ngsi-ld/v1/entities/{entity_id}"),
        f"a Location header ending in /ngsi-ld/v1/entities/{entity_id}",
        f"Location: {location or '(none)'}",
    )


@entity_check("entity-create-duplicate-409", "5.6.1; 6.4.3.1", "Creating an existing id is 409")
async def create_duplicate(ctx: ProbeContext) -> None:
    entity = ctx.entity(temperature=TEMPERATURE)
    await ctx.create_ok(entity)
    expect_problem(await ctx.create(entity), 409, "AlreadyExists")


@entity_check("entity-create-invalid-400", "5.6.1; 6.4.3.1", "An id that is no URI is 400")
async def create_invalid(ctx: ProbeContext) -> None:
    body = {"id": f"not a uri {ctx.run_id}", "type": ctx.entity_type}
    reply = await ctx.request("POST", "entities", json=body)
    expect_problem(reply, 400, "BadRequestData")


@entity_check("entity-retrieve-normalized", "5.7.1; 6.5.3.1", "Retrieve gives the normalized form")
async def retrieve_normalized(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    reply = await ctx.retrieve(entity_id)
    temperature = attribute(reply, "temperature")
    expect(
        reply.body.get("id") == entity_id and reply.body.get("type") == ctx.entity_type,
        f"id {entity_id} and type {ctx.entity_type}",
        reply.describe(),
    )
    expect(
        isinstance(temperature, dict)
        and temperature.get("type") == "Property"
        and temperature.get("value") == 21.5
        and temperature.get("unitCode") == "CEL",
        'temperature {"type": "Property", "value": 21.5, "unitCode": "CEL"}',
        reply.describe(),
    )


@entity_check(
    "entity-retrieve-keyvalues", "4.5.4; 5.7.1; 6.3.7; 6.5.3.1", "options=keyValues simplifies"
)
async def retrieve_key_values(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    reply = await ctx.retrieve(entity_id, options="keyValues")
    temperature = attribute(reply, "temperature")
    expect(temperature == 21.5, "temperature given as its bare value 21.5", reply.describe())


@entity_check(
    "entity-retrieve-concise", "4.5.2.3; 5.7.1; 6.3.7; 6.5.3.1", "options=concise drops types"
)
async def retrieve_concise(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    reply = await ctx.retrieve(entity_id, options="concise")
    temperature = attribute(reply, "temperature")
    expect(
        temperature == {"value": 21.5, "unitCode": "CEL"},
        'temperature {"value": 21.5, "unitCode": "CEL"} (no "type")',
        reply.describe(),
    )


@entity_check("entity-retrieve-attrs", "5.7.1; 6.5.3.1", "attrs= projects the attributes")
async def retrieve_attrs(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE, name="probe"))
    reply = await ctx.retrieve(entity_id, attrs="name")
    attribute(reply, "name")
    expect("temperature" not in reply.body, "only the attribute name", reply.describe())


@entity_check("entity-retrieve-404", "5.7.1; 6.5.3.1", "Retrieving an unknown id is 404")
async def retrieve_unknown(ctx: ProbeContext) -> None:
    expect_problem(await ctx.retrieve(ctx.new_id()), 404, "ResourceNotFound")


@entity_check("entity-delete-204", "5.6.6; 6.5.3.2", "Delete Entity answers 204, then it is gone")
async def delete_entity(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    expect_status(await ctx.request("DELETE", _path(entity_id)), 204)
    expect_problem(await ctx.retrieve(entity_id), 404, "ResourceNotFound")


@attribute_check("attrs-append-204", "5.6.3; 6.6.3.1", "Append Attributes answers 204")
async def append(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    body = {"humidity": {"type": "Property", "value": 60}}
    expect_status(await ctx.request("POST", _path(entity_id, "attrs"), json=body), 204)
    humidity = attribute(await ctx.retrieve(entity_id), "humidity")
    expect(humidity.get("value") == 60, "humidity 60 after the append", repr(humidity))


@attribute_check(
    "attrs-append-nooverwrite-207", "5.6.3; 6.6.3.1; 5.2.18", "noOverwrite keeps values: 207"
)
async def append_no_overwrite(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    body = {"temperature": {"type": "Property", "value": 99}}
    reply = await ctx.request(
        "POST", _path(entity_id, "attrs"), json=body, params={"options": "noOverwrite"}
    )
    expect_status(reply, 207, what="with an UpdateResult")
    not_updated = reply.body.get("notUpdated") if isinstance(reply.body, dict) else None
    expect(
        isinstance(not_updated, list)
        and any(
            isinstance(item, dict) and item.get("attributeName") == "temperature"
            for item in not_updated
        ),
        "UpdateResult.notUpdated naming temperature",
        reply.describe(),
    )
    temperature = attribute(await ctx.retrieve(entity_id), "temperature")
    expect(temperature.get("value") == 21.5, "temperature still 21.5", repr(temperature))


@attribute_check("attrs-update-204", "5.6.2; 6.6.3.2", "Update Attributes answers 204")
async def update(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    body = {"temperature": {"type": "Property", "value": 30}}
    expect_status(await ctx.request("PATCH", _path(entity_id, "attrs"), json=body), 204)
    temperature = attribute(await ctx.retrieve(entity_id), "temperature")
    expect(temperature.get("value") == 30, "temperature 30 after the update", repr(temperature))


@attribute_check(
    "attrs-update-missing-207", "5.6.2; 6.6.3.2; 5.2.18", "Updating a missing attribute: 207"
)
async def update_missing(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    body = {
        "temperature": {"type": "Property", "value": 30},
        "pressure": {"type": "Property", "value": 1013},
    }
    reply = await ctx.request("PATCH", _path(entity_id, "attrs"), json=body)
    expect_status(reply, 207, what="with an UpdateResult")
    result = reply.body if isinstance(reply.body, dict) else {}
    updated = result.get("updated")
    not_updated = result.get("notUpdated")
    expect(
        isinstance(updated, list)
        and "temperature" in updated
        and isinstance(not_updated, list)
        and any(
            isinstance(item, dict) and item.get("attributeName") == "pressure"
            for item in not_updated
        ),
        'UpdateResult {"updated": ["temperature"], "notUpdated": [{"attributeName": "pressure"}]}',
        reply.describe(),
    )
    entity = (await ctx.retrieve(entity_id)).body
    expect(
        isinstance(entity, dict) and "pressure" not in entity,
        "no pressure attribute created by an update",
        repr(entity),
    )


@attribute_check("attrs-partial-update-204", "5.6.4; 6.7.3.1", "Partial update keeps the rest")
async def partial_update(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    reply = await ctx.request("PATCH", _path(entity_id, "attrs", "temperature"), json={"value": 25})
    expect_status(reply, 204)
    temperature = attribute(await ctx.retrieve(entity_id), "temperature")
    expect(
        temperature.get("value") == 25 and temperature.get("unitCode") == "CEL",
        "temperature 25 with its unitCode CEL kept",
        repr(temperature),
    )


@attribute_check("attrs-partial-update-404", "5.6.4; 6.7.3.1", "Partial update of none is 404")
async def partial_update_missing(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    reply = await ctx.request("PATCH", _path(entity_id, "attrs", "pressure"), json={"value": 1})
    expect_problem(reply, 404, "ResourceNotFound")


@attribute_check("attrs-delete-204", "5.6.5; 6.7.3.2", "Delete Attribute answers 204")
async def delete_attribute(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE, name="probe"))
    expect_status(await ctx.request("DELETE", _path(entity_id, "attrs", "temperature")), 204)
    reply = await ctx.retrieve(entity_id)
    attribute(reply, "name")
    if "temperature" in reply.body:
        raise CheckFailed("the entity without temperature", reply.describe())


@attribute_check("attrs-delete-404", "5.6.5; 6.7.3.2", "Deleting a missing attribute is 404")
async def delete_missing_attribute(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=TEMPERATURE))
    reply = await ctx.request("DELETE", _path(entity_id, "attrs", "pressure"))
    expect_problem(reply, 404, "ResourceNotFound")
