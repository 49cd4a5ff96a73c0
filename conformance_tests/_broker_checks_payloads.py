"""Checks of payload validation (clauses 4.5-4.7: 400 BadRequestData, nothing stored) and
of update semantics (NGSI-LD Null, the default instance, `type` on one entity, batch results,
times as sent)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conformance_tests._broker_framework import (
    Check,
    ProbeContext,
    Reply,
    attribute,
    expect,
    expect_problem,
    expect_status,
    registrar,
)

__all__ = ["PAYLOAD_CHECKS", "UPDATE_CHECKS"]

PAYLOAD_CHECKS: list[Check] = []
UPDATE_CHECKS: list[Check] = []
payload_check = registrar(PAYLOAD_CHECKS, "payloads")
update_check = registrar(UPDATE_CHECKS, "updates")

NULL = "urn:ngsi-ld:null"


def _path(entity_id: str, *rest: str) -> str:
    return "/".join([f"entities/{quote(entity_id, safe='')}", *rest])


async def _refused(ctx: ProbeContext, entity: dict[str, Any]) -> None:
    """Create answers 400 BadRequestData and stores nothing."""
    expect_problem(await ctx.create(entity), 400, "BadRequestData")
    if str(entity["id"]).isascii():
        expect_status(await ctx.retrieve(str(entity["id"])), 404, what="(nothing stored)")


@payload_check("payload-reserved-name", "4.6.3", "A core term is no attribute name (400)")
async def reserved_name(ctx: ProbeContext) -> None:
    await _refused(ctx, ctx.entity(observedAt=1))


@payload_check("payload-type-term", "4.6.2; 4.6.3", "A type starting with a digit is refused")
async def type_term(ctx: ProbeContext) -> None:
    await _refused(ctx, {"id": ctx.new_id(), "type": "1Sensor"})


@payload_check("payload-attribute-context", "5.2.4", "@context inside an attribute is refused")
async def attribute_context(ctx: ProbeContext) -> None:
    member = {"type": "Property", "value": 1, "@context": {"x": "https://example.org/x"}}
    await _refused(ctx, ctx.entity(temperature=member))


@payload_check("payload-invisible-id", "4.6.2", "An id with a zero-width character is refused")
async def invisible_id(ctx: ProbeContext) -> None:
    # Not tracked for clean-up: no broker can delete an id it must refuse.
    reply = await ctx.request("POST", "entities", json=ctx.entity(ctx.new_id() + "\u200b"))
    expect_problem(reply, 400, "BadRequestData")


@payload_check("payload-foreign-member", "4.5.2; 5.2.6", "A Relationship with a value is refused")
async def foreign_member(ctx: ProbeContext) -> None:
    member = {"type": "Relationship", "object": "urn:ngsi-ld:Building:1", "value": 1}
    await _refused(ctx, ctx.entity(isIn=member))


@payload_check("payload-location-geo", "4.7.1", "A location that is no GeoProperty is refused")
async def location_geo(ctx: ProbeContext) -> None:
    await _refused(ctx, ctx.entity(location="Prato"))


@payload_check("payload-null-on-create", "4.5.0", "NGSI-LD Null in a create is refused")
async def null_on_create(ctx: ProbeContext) -> None:
    await _refused(ctx, ctx.entity(temperature=NULL))


@payload_check("payload-utc-z", "4.6.3", "observedAt with an offset is refused (UTC, Z)")
async def utc_z(ctx: ProbeContext) -> None:
    member = {"type": "Property", "value": 1, "observedAt": "2026-01-31T12:00:00+01:00"}
    await _refused(ctx, ctx.entity(temperature=member))


@payload_check("payload-partial-kind", "5.6.4", "A partial update changing the type is refused")
async def partial_kind(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, temperature=1))
    fragment = {"type": "Relationship", "object": "urn:ngsi-ld:Building:1"}
    reply = await ctx.request("PATCH", _path(entity_id, "attrs", "temperature"), json=fragment)
    expect_problem(reply, 400, "BadRequestData")
    kept = attribute(await ctx.retrieve(entity_id), "temperature")
    expect(kept == {"type": "Property", "value": 1}, "temperature unchanged", repr(kept))


@payload_check("payload-geojson-syntax", "4.7.1", "A self-intersecting Polygon is GeoJSON")
async def geojson_syntax(ctx: ProbeContext) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, area={"type": "GeoProperty", "value": bowtie}))


@payload_check(
    "payload-sealed-outside-proof", "4.5.2.2", "entityIdSealed outside ngsildproof is refused"
)
async def sealed_outside_proof(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    member = {"type": "Property", "value": 1, "entityIdSealed": entity_id}
    await _refused(ctx, ctx.entity(entity_id, temperature=member))


async def _entity_with(ctx: ProbeContext, **attrs: Any) -> str:
    entity_id = ctx.new_id()
    await ctx.create_ok(ctx.entity(entity_id, **attrs))
    return entity_id


def _expect_gone(reply: Reply, name: str) -> None:
    expect_status(reply, 200, what="with the entity")
    expect(
        isinstance(reply.body, dict) and name not in reply.body,
        f"the entity without {name!r}",
        reply.describe(),
    )


@update_check("update-null-deletes", "4.5.0; 5.6.4", "NGSI-LD Null in a partial update deletes")
async def null_deletes(ctx: ProbeContext) -> None:
    entity_id = await _entity_with(ctx, temperature=1, humidity=2)
    path = _path(entity_id, "attrs", "temperature")
    expect_status(await ctx.request("PATCH", path, json={"value": NULL}), 204)
    _expect_gone(await ctx.retrieve(entity_id), "temperature")


@update_check("update-null-dataset", "4.5.0; 5.6.17", "Null with a datasetId deletes one instance")
async def null_dataset(ctx: ProbeContext) -> None:
    dataset = "urn:ngsi-ld:Dataset:gps"
    instances = [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]
    instances[1]["datasetId"] = dataset
    entity_id = ctx.new_id()
    body = ctx.entity(entity_id)
    body["speed"] = instances
    await ctx.create_ok(body)
    merge = {"speed": {"type": "Property", "value": NULL, "datasetId": dataset}}
    expect_status(await ctx.request("PATCH", _path(entity_id), json=merge), 204)
    kept = attribute(await ctx.retrieve(entity_id), "speed")
    expect(kept == instances[0], "only the default instance left", repr(kept))


@update_check("update-dataset-none", "4.5.5", 'datasetId "@none" is the default instance')
async def dataset_none(ctx: ProbeContext) -> None:
    entity_id = await _entity_with(ctx, speed=1)
    fragment = {"value": 5, "datasetId": "@none"}
    reply = await ctx.request("PATCH", _path(entity_id, "attrs", "speed"), json=fragment)
    expect_status(reply, 204)
    kept = attribute(await ctx.retrieve(entity_id), "speed")
    expect(kept == {"type": "Property", "value": 5}, "the default instance now 5", repr(kept))


@update_check("update-type-mismatch", "6.5.3.1; 6.5.3.2", "`type` of another type is 404")
async def type_mismatch(ctx: ProbeContext) -> None:
    entity_id = await _entity_with(ctx, speed=1)
    other = {"type": ctx.entity_type + "Other"}
    expect_problem(await ctx.retrieve(entity_id, **other), 404, "ResourceNotFound")
    reply = await ctx.request("DELETE", _path(entity_id), params=other)
    expect_problem(reply, 404, "ResourceNotFound")
    expect_status(await ctx.retrieve(entity_id, type=ctx.entity_type), 200)


@update_check("update-batch-no-overwrite", "5.6.9; 6.16.3.1", "noOverwrite over existing is 207")
async def batch_no_overwrite(ctx: ProbeContext) -> None:
    entity_id = await _entity_with(ctx, speed=1)
    body = [{"id": entity_id, "type": ctx.entity_type, "speed": {"type": "Property", "value": 9}}]
    reply = await ctx.request(
        "POST", "entityOperations/update", json=body, params={"options": "noOverwrite"}
    )
    expect_status(reply, 207, what="with the entity whose attribute was kept")
    kept = attribute(await ctx.retrieve(entity_id), "speed")
    expect(kept == {"type": "Property", "value": 1}, "speed kept at 1", repr(kept))


@update_check("update-batch-delete-twice", "5.6.10; 6.17.3.1", "An id deleted twice is 207")
async def batch_delete_twice(ctx: ProbeContext) -> None:
    entity_id = await _entity_with(ctx)
    reply = await ctx.request("POST", "entityOperations/delete", json=[entity_id, entity_id])
    expect_status(reply, 207, what="with a ResourceNotFound for the second")
    body = reply.body
    expect(
        isinstance(body, dict) and body.get("success") == [entity_id],
        f"success [{entity_id}] and one error",
        reply.describe(),
    )


@update_check("update-keyvalues-dataset", "4.5.4", "keyValues of instances is a dataset map")
async def keyvalues_dataset(ctx: ProbeContext) -> None:
    dataset = "urn:ngsi-ld:Dataset:gps"
    entity_id = ctx.new_id()
    body = ctx.entity(entity_id)
    body["speed"] = [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": dataset},
    ]
    await ctx.create_ok(body)
    shown = attribute(await ctx.retrieve(entity_id, options="keyValues"), "speed")
    wanted = {"dataset": {"@none": 1, dataset: 2}}
    expect(shown == wanted, repr(wanted), repr(shown))


@update_check("update-time-as-sent", "4.6.3", "observedAt is answered as it was sent")
async def time_as_sent(ctx: ProbeContext) -> None:
    when = "2026-01-31T12:00:00Z"
    entity_id = await _entity_with(
        ctx, temperature={"type": "Property", "value": 1, "observedAt": when}
    )
    shown = attribute(await ctx.retrieve(entity_id), "temperature")
    got = shown.get("observedAt") if isinstance(shown, dict) else None
    expect(got == when, f"observedAt {when}", repr(got))


@update_check("update-ngsildproof-as-sent", "4.5.2.2; C.11", "ngsildproof is answered as sent")
async def ngsildproof_as_sent(ctx: ProbeContext) -> None:
    entity_id = ctx.new_id()
    proof = {
        "type": "Property",
        "entityIdSealed": entity_id,
        "entityTypeSealed": ctx.entity_type,
        "value": {
            "type": "DataIntegrityProof",
            "created": "2025-01-27T21:02:24Z",
            "verificationMethod": "https://example.edu/issuers/565049#key-1",
            "cryptosuite": "eddsa-rdfc-2022",
            "proofPurpose": "assertionMethod",
            "proofValue": "z3XrH3diVCqpVHXkE7WbnictqyQCkJBGTx",
        },
    }
    signed = {"type": "Property", "value": {"addressLocality": "Prato"}, "ngsildproof": proof}
    await ctx.create_ok(ctx.entity(entity_id, address=signed))
    shown = attribute(await ctx.retrieve(entity_id), "address")
    got = shown.get("ngsildproof") if isinstance(shown, dict) else None
    expect(got == proof, "the ngsildproof as sent, its members not wrapped", repr(got))
