"""NGSI-LD entities: payload -> stored document, document -> representation, and the pure
changes each operation makes to a document.

Stored document: `_id` (entity id), `type` (expanded type IRIs), optional `scope`,
`createdAt`/`modifiedAt`, `v` (a write counter for optimistic concurrency), `an` (expanded
attribute names in insertion order), `attrs` (default instances by encoded name) and `ds`
(instances that carry a datasetId, by encoded name) and `gp`/`gc` (geo-query keys of each
default GeoProperty instance: a Point's key, another geometry's cells; see `_query._cells`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from context_broker._attributes import (
    NULL_URI,
    PROOF_FIELD,
    REPLACEABLE_MEMBERS,
    VALUE_MEMBER,
    VALUE_MEMBERS,
    RenderOptions,
    has_null,
    is_null_instance,
    parse_attribute,
    parse_instance,
    render_attribute,
)
from context_broker._errors import BadRequestData, ResourceNotFound
from context_broker._jsonld import TermMap, core_term_map
from context_broker._names import (
    RESERVED_ATTRIBUTE_TERMS,
    RESERVED_ENTITY_MEMBERS,
    check_name,
    check_scope,
    check_uri,
    decode_field,
    encode_field,
)
from context_broker._query._cells import geometry_cells, point_key
from context_broker._time import format_datetime, parse_datetime

Document = dict[str, Any]
Instances = list[dict[str, Any]]
_NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
_DEFAULT_VOCAB = _NGSI_LD + "default-context/"


@dataclass(slots=True)
class Fragment:
    """The parsed members of a payload: types, scope and attributes by encoded name."""

    types: list[str] | None = None
    scope: list[str] | None = None
    attrs: dict[str, Instances] = field(default_factory=dict)
    deletions: list[str] = field(default_factory=list)
    # A transient entity's end (clause 4.5.x, V1.8 "expiresAt"): the broker deletes it then.
    expires_at: datetime | None = None


@dataclass(slots=True)
class AttributeOutcome:
    """Which attributes an operation changed and which it left alone (with why)."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)


def entity_id_of(payload: object) -> str:
    if not isinstance(payload, dict):
        raise BadRequestData("an entity must be a JSON object")
    if "id" not in payload and "@id" not in payload:
        raise BadRequestData("the entity has no 'id'")
    return check_uri(payload.get("id", payload.get("@id")), "entity id")


def parse_fragment(
    payload: object,
    terms: TermMap,
    now: datetime,
    *,
    allow_null: bool = False,
    new_entity: bool = False,
) -> Fragment:
    """Parse the attribute members (and type/scope if present) of an entity payload.
    `allow_null`: JSON null and NGSI-LD Null delete whole attributes (merge); in a
    `new_entity`, NGSI-LD Null is refused anywhere (there is nothing to delete)."""
    if not isinstance(payload, dict):
        raise BadRequestData("the payload must be a JSON object")
    fragment = Fragment()
    raw_type = payload.get("type", payload.get("@type"))
    if raw_type is not None:
        fragment.types = _parse_types(raw_type, terms)
    if "scope" in payload:
        fragment.scope = check_scope(payload["scope"])
    if "expiresAt" in payload:
        fragment.expires_at = parse_datetime(payload["expiresAt"], "expiresAt")
    for name, given in payload.items():
        if name in RESERVED_ENTITY_MEMBERS:
            continue
        check_name(name, "attribute name")
        iri = terms.expand(name)
        if iri in _reserved_attribute_iris() or iri.startswith("@"):
            raise BadRequestData(f"{name!r} is a reserved NGSI-LD term, not an attribute name")
        encoded = encode_field(iri)
        raw = given
        if allow_null and isinstance(given, dict):
            # JSON null in a merge patch means urn:ngsi-ld:null (RFC 7396; as Orion-LD does)
            raw = {key: NULL_URI if value is None else value for key, value in given.items()}
        if allow_null and (raw is None or raw == NULL_URI or _is_null_attribute(raw)):
            fragment.deletions.append(encoded)
            continue
        fragment.attrs[encoded] = parse_attribute(
            raw, name, terms, now, null_allowed=not new_entity
        )
    return fragment


@functools.cache
def _reserved_attribute_iris() -> frozenset[str]:
    core = core_term_map()
    return frozenset(core.expand(term) for term in RESERVED_ATTRIBUTE_TERMS)


def _is_null_attribute(raw: object) -> bool:
    """A whole attribute set to NGSI-LD Null (an instance with a datasetId deletes only it)."""
    return (
        isinstance(raw, dict)
        and raw.get("datasetId", "@none") == "@none"
        and any(raw.get(member) == NULL_URI for member in ("value", "object", "vocab", "json"))
    )


def _parse_types(raw: object, terms: TermMap) -> list[str]:
    names = raw if isinstance(raw, list) else [raw]
    if not names:
        raise BadRequestData("the entity type must not be an empty array")
    expanded: list[str] = []
    for name in names:
        iri = terms.expand(check_name(name, "entity type"))
        if iri.startswith("@") or (iri.startswith(_NGSI_LD) and not iri.startswith(_DEFAULT_VOCAB)):
            raise BadRequestData(f"entity type {name!r} is a reserved NGSI-LD term")
        if iri not in expanded:
            expanded.append(iri)
    return expanded


def build_document(payload: object, terms: TermMap, now: datetime) -> Document:
    """A new entity's stored document from a create payload (id and type required)."""
    entity_id = entity_id_of(payload)
    fragment = parse_fragment(payload, terms, now, new_entity=True)
    if fragment.types is None:
        raise BadRequestData(f"entity {entity_id} has no 'type'")
    doc: Document = {"_id": entity_id, "type": fragment.types}
    if fragment.scope is not None:
        doc["scope"] = fragment.scope
    if fragment.expires_at is not None:
        doc["expiresAt"] = fragment.expires_at
    doc.update({"createdAt": now, "modifiedAt": now, "v": 1, "an": [], "attrs": {}})
    for encoded, instances in fragment.attrs.items():
        set_instances(doc, encoded, instances)
    return doc


def instances_of(doc: Document, encoded: str) -> Instances:
    default = doc["attrs"].get(encoded)
    others: Instances = doc.get("ds", {}).get(encoded, [])
    return ([default] if default is not None else []) + others


def set_instances(doc: Document, encoded: str, instances: Instances) -> None:
    """Store an attribute's instances (none removes it), keeping `an` in insertion order."""
    default = [i for i in instances if "datasetId" not in i]
    others = [i for i in instances if "datasetId" in i]
    if default:
        doc["attrs"][encoded] = default[0]
    else:
        doc["attrs"].pop(encoded, None)
    _index_geometry(doc, encoded)
    datasets = doc.setdefault("ds", {})
    if others:
        datasets[encoded] = others
    else:
        datasets.pop(encoded, None)
    if not datasets:
        doc.pop("ds", None)
    name = decode_field(encoded)
    if instances and name not in doc["an"]:
        doc["an"].append(name)
    elif not instances and name in doc["an"]:
        doc["an"].remove(name)


GRID_MEMBERS = ("gc", "gp")
"""Document members holding the geo-query keys of each default GeoProperty instance."""


def grid_keys(instance: dict[str, Any] | None) -> dict[str, Any]:
    """The geo-query keys of a default attribute instance, by document member: a Point's
    key (`gp`), another geometry's cells (`gc`), none for other attributes."""
    if instance is None or instance["type"] != "GeoProperty":
        return {}
    geometry = instance["value"]
    if geometry["type"] == "Point":
        return {"gp": point_key(geometry["coordinates"])}
    return {"gc": geometry_cells(geometry)}


def _index_geometry(doc: Document, encoded: str) -> None:
    """Keep the geo-query keys (`gc`, `gp`) of a default GeoProperty instance in step."""
    keys = grid_keys(doc["attrs"].get(encoded))
    for member in GRID_MEMBERS:
        entries = doc.setdefault(member, {})
        if member in keys:
            entries[encoded] = keys[member]
        else:
            entries.pop(encoded, None)
        if not entries:
            del doc[member]


@dataclass(slots=True, frozen=True)
class FieldUpdate:
    """A change of existing default attribute instances as one update of stored fields (the
    hot path of attribute updates): the attributes the entity must have (of the given kind,
    when one is given), the fields set and removed, the instances written (for the
    GeoProperty indexes)."""

    required: tuple[tuple[str, str | None], ...]
    set_fields: dict[str, Any]
    unset_fields: tuple[str, ...]
    written: Document


def with_field_update(doc: Document, change: FieldUpdate) -> Document:
    """The stored document after `change`, as the store applies it (`$set`, `$unset`, `v`
    counted), from the one before; `doc` is left as it was."""
    after = dict(doc)
    for path, value in change.set_fields.items():
        *parents, last = path.split(".")
        _along(after, parents)[last] = value
    for path in change.unset_fields:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            _along(after, parents).pop(last)
    after["v"] = after.get("v", 0) + 1
    return after


def _along(doc: Document, parents: list[str]) -> Document:
    """The sub-document at `parents`, each level copied so that the original is not changed
    (and made when missing, as `$set` does)."""
    node = doc
    for part in parents:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    return node


def attributes_update(fragment: Fragment, now: datetime) -> FieldUpdate | None:
    """Update Attributes (clause 5.6.2) as a field update, when the fragment only replaces
    default instances and changes no type; else None (the operation reads and writes back)."""
    if fragment.types is not None or not fragment.attrs:
        return None
    if not all(
        len(instances) == 1 and "datasetId" not in instances[0]
        for instances in fragment.attrs.values()
    ):
        return None
    set_fields: dict[str, Any] = {"modifiedAt": now}
    unset: list[str] = []
    for encoded, (instance,) in fragment.attrs.items():
        for member, value in instance.items():
            if member != "createdAt":
                set_fields[f"attrs.{encoded}.{member}"] = value
        keys = grid_keys(instance)
        for member in GRID_MEMBERS:
            if member in keys:
                set_fields[f"{member}.{encoded}"] = keys[member]
            else:
                unset.append(f"{member}.{encoded}")
        unset.extend(
            f"attrs.{encoded}.{member}" for member in REPLACEABLE_MEMBERS if member not in instance
        )
    required = tuple((encoded, None) for encoded in fragment.attrs)
    written = {"attrs": {encoded: instances[0] for encoded, instances in fragment.attrs.items()}}
    return FieldUpdate(required, set_fields, tuple(unset), written)


def partial_attribute_update(
    payload: dict[str, Any], attr: str, encoded: str, terms: TermMap, now: datetime
) -> FieldUpdate | None:
    """Partial Attribute Update (clause 5.6.4) as a field update, when the payload names its
    kind or value member and deletes no sub-attribute; else None."""
    if "datasetId" in payload:
        return None
    if "type" not in payload and not any(member in payload for member in VALUE_MEMBERS):
        return None
    instance = parse_instance(payload, attr, terms, now)
    if has_null(instance) or _has_null_key(instance.get("value")):
        return None
    set_fields: dict[str, Any] = {"modifiedAt": now}
    for member, value in instance.items():
        if member == "sub":
            for sub_field, sub_instance in value.items():
                set_fields[f"attrs.{encoded}.sub.{sub_field}"] = sub_instance
        elif member != "createdAt":
            set_fields[f"attrs.{encoded}.{member}"] = value
    unset: list[str] = []
    if "observedAt" in instance and "ot" not in instance:
        unset.append(f"attrs.{encoded}.ot")
    keys = grid_keys(instance)
    for member in GRID_MEMBERS if keys else ():
        if member in keys:
            set_fields[f"{member}.{encoded}"] = keys[member]
        else:
            unset.append(f"{member}.{encoded}")
    kind = str(instance["type"])
    written = {"attrs": {encoded: {"type": kind}}}
    return FieldUpdate(((encoded, kind),), set_fields, tuple(unset), written)


def _replace_instance(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    replaced = dict(new)
    replaced["createdAt"] = old["createdAt"]
    return replaced


def _merge_instance(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch of one instance: given members replace, sub-attributes merge recursively."""
    merged = {k: v for k, v in old.items() if k != "sub"}
    if new["type"] != old["type"]:
        merged = {"createdAt": old["createdAt"]}
    merged.update({k: v for k, v in new.items() if k not in ("sub", "createdAt")})
    if "value" in new:
        merged["value"] = _patched_value(old.get("value"), new["value"])
    if "observedAt" in new and "ot" not in new:
        merged.pop("ot", None)
    subs = dict(old.get("sub", {})) if new["type"] == old["type"] else {}
    for key, sub_new in new.get("sub", {}).items():
        if is_null_instance(sub_new):
            subs.pop(key, None)
        else:
            subs[key] = _merged(key, subs.get(key), sub_new)
    if subs:
        merged["sub"] = subs
    return merged


def _merged(field: str, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The instance a merge leaves: `new` merged into `old`, except that a signature
    (ngsildproof, clause 4.5.2.2) is replaced whole, as its proof holds only as signed."""
    if old is None:
        return new
    if field == PROOF_FIELD:
        return _replace_instance(old, new)
    return _merge_instance(old, new)


def _has_null_key(value: object) -> bool:
    return isinstance(value, dict) and NULL_URI in value.values()


def _patched_value(old: object, new: object) -> object:
    """A compound value whose keys set to NGSI-LD Null delete only those keys of the stored
    value (clause 5.6.4, 5.6.17); a value without such keys replaces the stored one."""
    if not isinstance(new, dict) or not _has_null_key(new):
        return new
    patched = dict(old) if isinstance(old, dict) else {}
    for key, item in new.items():
        if item == NULL_URI:
            patched.pop(key, None)
        else:
            patched[key] = item
    return patched


def _touch(doc: Document, now: datetime) -> None:
    doc["modifiedAt"] = now
    doc["v"] = doc.get("v", 0) + 1


def _add_types(doc: Document, types: list[str] | None) -> None:
    for iri in types or []:
        if iri not in doc["type"]:
            doc["type"].append(iri)


def append_attributes(
    doc: Document, fragment: Fragment, now: datetime, *, no_overwrite: bool
) -> AttributeOutcome:
    """Append Entity Attributes (clause 5.6.3): add new attributes; replace unless noOverwrite."""
    outcome = AttributeOutcome()
    _add_types(doc, fragment.types)
    if fragment.scope is not None:
        doc["scope"] = fragment.scope
    for encoded, new_instances in fragment.attrs.items():
        current = instances_of(doc, encoded)
        by_dataset = {i.get("datasetId"): i for i in current}
        changed = False
        for new in new_instances:
            old = by_dataset.get(new.get("datasetId"))
            if old is not None and no_overwrite:
                outcome.not_updated.append((decode_field(encoded), "attribute already exists"))
                continue
            by_dataset[new.get("datasetId")] = new if old is None else _replace_instance(old, new)
            changed = True
        if changed:
            set_instances(doc, encoded, list(by_dataset.values()))
            outcome.updated.append(decode_field(encoded))
    _touch(doc, now)
    return outcome


def update_attributes(doc: Document, fragment: Fragment, now: datetime) -> AttributeOutcome:
    """Update Entity Attributes (clause 5.6.2): replace only attributes the entity has."""
    outcome = AttributeOutcome()
    for encoded, new_instances in fragment.attrs.items():
        current = instances_of(doc, encoded)
        by_dataset = {i.get("datasetId"): i for i in current}
        changed = False
        for new in new_instances:
            old = by_dataset.get(new.get("datasetId"))
            if old is None:
                outcome.not_updated.append(
                    (decode_field(encoded), "the entity has no such attribute (datasetId)")
                )
                continue
            by_dataset[new.get("datasetId")] = _replace_instance(old, new)
            changed = True
        if changed:
            set_instances(doc, encoded, list(by_dataset.values()))
            outcome.updated.append(decode_field(encoded))
    if outcome.updated:
        _touch(doc, now)
    return outcome


def merge_entity(doc: Document, fragment: Fragment, now: datetime) -> None:
    """Merge Entity (clause 5.6.17): merge attributes in, delete those set to urn:ngsi-ld:null."""
    _add_types(doc, fragment.types)
    if fragment.scope is not None:
        doc["scope"] = fragment.scope
    if fragment.expires_at is not None:
        doc["expiresAt"] = fragment.expires_at
    for encoded in fragment.deletions:
        set_instances(doc, encoded, [])
    for encoded, new_instances in fragment.attrs.items():
        by_dataset = {i.get("datasetId"): i for i in instances_of(doc, encoded)}
        for new in new_instances:
            old = by_dataset.get(new.get("datasetId"))
            if is_null_instance(new):
                by_dataset.pop(new.get("datasetId"), None)
            else:
                by_dataset[new.get("datasetId")] = _merged(encoded, old, new)
        set_instances(doc, encoded, list(by_dataset.values()))
    _touch(doc, now)


def replace_entity(doc: Document, new_doc: Document, now: datetime) -> Document:
    """Replace Entity (clause 5.6.18): everything but id and createdAt comes from the payload."""
    replaced = dict(new_doc)
    replaced["createdAt"] = doc["createdAt"]
    replaced["v"] = doc.get("v", 0) + 1
    replaced["modifiedAt"] = now
    return replaced


def partial_update_attribute(
    doc: Document, name: str, encoded: str, raw: object, terms: TermMap, now: datetime
) -> None:
    """Partial Attribute Update (clause 5.6.4): merge the fragment into one existing instance."""
    if not isinstance(raw, dict):
        raw = {"value": raw}
    dataset_id = None if raw.get("datasetId") == "@none" else raw.get("datasetId")
    by_dataset = {i.get("datasetId"): i for i in instances_of(doc, encoded)}
    old = by_dataset.get(dataset_id)
    if old is None:
        raise ResourceNotFound(_missing_attribute(doc["_id"], name, dataset_id))
    fragment = dict(raw)
    if "type" not in fragment:
        fragment["type"] = old["type"]
        if not any(member in fragment for member in VALUE_MEMBERS):
            member = VALUE_MEMBER[old["type"]]
            fragment[member] = old[member]
    new = parse_instance(fragment, name, terms, now)
    if new["type"] != old["type"]:
        raise BadRequestData(
            f"attribute {name!r} is a {old['type']}; a partial update cannot make it a "
            f"{new['type']}"
        )
    if is_null_instance(new):
        by_dataset.pop(dataset_id)
    else:
        by_dataset[dataset_id] = _merge_instance(old, new)
    set_instances(doc, encoded, list(by_dataset.values()))
    _touch(doc, now)


def replace_attribute(
    doc: Document, name: str, encoded: str, instances: Instances, now: datetime
) -> None:
    """Replace Attribute (clause 5.6.19): the attribute must exist; it is replaced whole."""
    by_dataset = {i.get("datasetId"): i for i in instances_of(doc, encoded)}
    for new in instances:
        old = by_dataset.get(new.get("datasetId"))
        if old is None:
            raise ResourceNotFound(_missing_attribute(doc["_id"], name, new.get("datasetId")))
        by_dataset[new.get("datasetId")] = _replace_instance(old, new)
    set_instances(doc, encoded, list(by_dataset.values()))
    _touch(doc, now)


def delete_scope(doc: Document, now: datetime) -> None:
    """Delete Entity Attribute of `scope` (clause 4.18): the entity's scope goes."""
    if "scope" not in doc:
        raise ResourceNotFound(f"entity {doc['_id']} has no scope")
    del doc["scope"]
    _touch(doc, now)


def delete_attribute(
    doc: Document,
    name: str,
    encoded: str,
    now: datetime,
    *,
    dataset_id: str | None,
    delete_all: bool,
) -> None:
    """Delete Entity Attribute (clause 5.6.5): one instance, or every instance with deleteAll."""
    current = instances_of(doc, encoded)
    if delete_all:
        remaining: Instances = []
        if not current:
            raise ResourceNotFound(_missing_attribute(doc["_id"], name, None))
    else:
        remaining = [i for i in current if i.get("datasetId") != dataset_id]
        if len(remaining) == len(current):
            raise ResourceNotFound(_missing_attribute(doc["_id"], name, dataset_id))
    set_instances(doc, encoded, remaining)
    _touch(doc, now)


def delete_all_attributes(doc: Document, now: datetime) -> None:
    """Delete every attribute and instance (DELETE on the attributes resource of clause 6.6).
    The entity stays with what is not an attribute (clause 5.2.4): id, type, scope and its
    system members."""
    if not doc["an"]:
        return
    for name in list(doc["an"]):
        set_instances(doc, encode_field(name), [])
    _touch(doc, now)


def expire_attributes(doc: Document, now: datetime) -> bool:
    """Transient attributes (clause 4.22, V1.9): remove the instances and sub-attributes whose
    expiresAt has passed at `now`, as deleting them would; whether any was."""
    expired = False
    for name in list(doc["an"]):
        encoded = encode_field(name)
        current = instances_of(doc, encoded)
        kept = [_unexpired(i, now) for i in current if not _has_expired(i, now)]
        if len(kept) != len(current) or any(a is not b for a, b in zip(kept, current, strict=True)):
            set_instances(doc, encoded, kept)
            expired = True
    if expired:
        _touch(doc, now)
    return expired


def _has_expired(instance: dict[str, Any], now: datetime) -> bool:
    return "expiresAt" in instance and instance["expiresAt"] <= now


def _unexpired(instance: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The instance without its expired sub-attributes (itself when it has none)."""
    sub = instance.get("sub")
    if not sub or not any("expiresAt" in s or "sub" in s for s in sub.values()):
        return instance
    kept = {k: _unexpired(s, now) for k, s in sub.items() if not _has_expired(s, now)}
    if len(kept) == len(sub) and all(kept[k] is sub[k] for k in kept):
        return instance
    pruned = {k: v for k, v in instance.items() if k != "sub"}
    if kept:
        pruned["sub"] = kept
    return pruned


def next_expiry(doc: Document) -> datetime | None:
    """The earliest expiresAt of the entity and of its attributes at any depth, if any."""
    times = [doc["expiresAt"]] if doc.get("expiresAt") is not None else []
    for instance in doc.get("attrs", {}).values():
        _collect_expiry(instance, times)
    for instances in doc.get("ds", {}).values():
        for instance in instances:
            _collect_expiry(instance, times)
    return min(times, default=None)


def earliest_written_expiry(change: FieldUpdate) -> datetime | None:
    """The earliest expiresAt a field update writes into attributes, if any."""
    times: list[datetime] = []
    for path, value in change.set_fields.items():
        if path.endswith(".expiresAt") and isinstance(value, datetime):
            times.append(value)
        elif isinstance(value, dict) and "type" in value:
            _collect_expiry(value, times)
    return min(times, default=None)


def _collect_expiry(instance: dict[str, Any], times: list[datetime]) -> None:
    if "expiresAt" in instance:
        times.append(instance["expiresAt"])
    for sub in instance.get("sub", {}).values():
        _collect_expiry(sub, times)


def _missing_attribute(entity_id: str, name: str, dataset_id: object) -> str:
    if dataset_id is None:
        return f"entity {entity_id} has no attribute {name!r}"
    return f"entity {entity_id} has no instance of attribute {name!r} with datasetId {dataset_id}"


def render_entity(
    doc: Document,
    terms: TermMap,
    options: RenderOptions,
    attrs: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The entity in the requested representation, names compacted with the caller's @context.

    `attrs` restricts the attributes shown (expanded names); None shows all.
    """
    types = [terms.compact(iri) for iri in doc["type"]]
    out: dict[str, Any] = {"id": doc["_id"], "type": types[0] if len(types) == 1 else types}
    if "scope" in doc:
        scope = doc["scope"]
        out["scope"] = scope[0] if len(scope) == 1 else scope
    if options.sys_attrs and options.format != "keyValues":
        out["createdAt"] = format_datetime(doc["createdAt"])
        out["modifiedAt"] = format_datetime(doc["modifiedAt"])
        if "expiresAt" in doc:
            out["expiresAt"] = format_datetime(doc["expiresAt"])
    for name in doc["an"]:
        if attrs is not None and name not in attrs:
            continue
        instances = instances_of(doc, encode_field(name))
        if instances:
            out[terms.compact(name)] = render_attribute(instances, terms, options)
    return out


def as_feature(doc: Document, body: dict[str, Any], geo_property: str) -> dict[str, Any]:
    """The GeoJSON Feature (clause 4.5.16) of an entity rendered as `body`: its id, the
    value of its `geo_property` as geometry, every other member in `properties`."""
    properties = dict(body)
    entity_id = properties.pop("id", doc["_id"])
    return {
        "id": entity_id,
        "type": "Feature",
        "geometry": geometry_of(doc, geo_property),
        "properties": properties,
    }


def geometry_of(doc: Document, geo_property: str) -> dict[str, Any] | None:
    """The GeoJSON value of the entity's GeoProperty (expanded name) for GeoJSON output."""
    instance = doc["attrs"].get(encode_field(geo_property))
    if instance is None or instance["type"] != "GeoProperty":
        return None
    value: dict[str, Any] = instance["value"]
    return value
