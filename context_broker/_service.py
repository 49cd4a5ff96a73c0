"""The broker's operations, one function per operation of ETSI GS CIM 009 clause 5.

They take parsed request data (payload, the caller's term map, the tenant) and return
stored documents or outcomes; the HTTP layer turns those into representations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from context_broker._attributes import REPLACEABLE_MEMBERS, parse_attribute, parse_instance
from context_broker._entities import (
    AttributeOutcome,
    Document,
    Fragment,
    append_attributes,
    build_document,
    delete_attribute,
    entity_id_of,
    is_null_instance,
    merge_entity,
    parse_fragment,
    partial_update_attribute,
    replace_attribute,
    replace_entity,
    update_attributes,
)
from context_broker._errors import (
    BadRequestData,
    NgsiLdError,
    ResourceNotFound,
    StoreUnavailable,
)
from context_broker._jsonld import TermMap
from context_broker._names import check_name, check_uri, decode_field, encode_field
from context_broker._query._cells import geometry_cells
from context_broker._store import EntityRepository, Store
from context_broker._time import utc_now

T = TypeVar("T")
_RETRIES = 8
BatchKind = Literal["create", "upsert", "update", "delete", "merge"]


@dataclass(slots=True)
class BatchResult:
    """BatchOperationResult (clause 5.2.16): the ids that succeeded and the errors by id."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: set[str] = field(default_factory=set)


@dataclass(slots=True, frozen=True)
class EntityQuery:
    """The selection part of Query Entities (the q/geo languages come with the query module)."""

    ids: tuple[str, ...] = ()
    id_pattern: str | None = None
    types: tuple[str, ...] = ()
    attrs: tuple[str, ...] = ()
    limit: int = 20
    offset: int = 0
    count: bool = False


class Broker:
    """The NGSI-LD operations over the store, tenant by tenant."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _repo(self, tenant: str | None, *, for_write: bool) -> EntityRepository:
        return await self.store.repository(tenant, for_write=for_write)

    async def _modify(
        self, repo: EntityRepository, entity_id: str, change: Callable[[Document], T]
    ) -> T:
        """Read, change in memory, write back if nobody wrote in between; retry otherwise."""
        for _ in range(_RETRIES):
            doc = await repo.get(entity_id)
            if doc is None:
                raise ResourceNotFound(f"entity {entity_id} does not exist")
            version = doc.get("v", 0)
            result = change(doc)
            if await repo.replace(doc, version):
                return result
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    # --- clause 5.6: entities -------------------------------------------------------------

    async def create_entity(self, tenant: str | None, payload: object, terms: TermMap) -> str:
        doc = build_document(payload, terms, utc_now())
        repo = await self._repo(tenant, for_write=True)
        await repo.insert(doc)
        return str(doc["_id"])

    async def retrieve_entity(
        self, tenant: str | None, entity_id: str, attrs: Sequence[str] | None = None
    ) -> Document:
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant, for_write=False)
        doc = await repo.get(entity_id, attrs)
        if doc is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist")
        return doc

    async def delete_entity(self, tenant: str | None, entity_id: str) -> None:
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant, for_write=False)
        if not await repo.delete(entity_id):
            raise ResourceNotFound(f"entity {entity_id} does not exist")

    async def replace_entity(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> None:
        check_uri(entity_id, "entity id")
        payload = _with_id(payload, entity_id)
        new_doc = build_document(payload, terms, utc_now())
        repo = await self._repo(tenant, for_write=False)
        for _ in range(_RETRIES):
            doc = await repo.get(entity_id)
            if doc is None:
                raise ResourceNotFound(f"entity {entity_id} does not exist")
            replaced = replace_entity(doc, new_doc, utc_now())
            if await repo.replace(replaced, doc.get("v", 0)):
                return
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    async def merge_entity(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> None:
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms, allow_null=True)
        repo = await self._repo(tenant, for_write=False)
        await self._modify(repo, entity_id, lambda doc: merge_entity(doc, fragment, utc_now()))

    async def append_attributes(
        self,
        tenant: str | None,
        entity_id: str,
        payload: object,
        terms: TermMap,
        *,
        no_overwrite: bool,
    ) -> AttributeOutcome:
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms)
        repo = await self._repo(tenant, for_write=False)
        return await self._modify(
            repo,
            entity_id,
            lambda doc: append_attributes(doc, fragment, utc_now(), no_overwrite=no_overwrite),
        )

    async def update_attributes(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> AttributeOutcome:
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms)
        repo = await self._repo(tenant, for_write=False)
        if fragment.types is None and _all_default_instances(fragment):
            now = utc_now()
            set_fields: dict[str, Any] = {"modifiedAt": now}
            unset: list[str] = []
            for encoded, (instance,) in fragment.attrs.items():
                for member, value in instance.items():
                    if member != "createdAt":
                        set_fields[f"attrs.{encoded}.{member}"] = value
                if instance["type"] == "GeoProperty":
                    set_fields[f"gc.{encoded}"] = geometry_cells(instance["value"])
                else:
                    unset.append(f"gc.{encoded}")
                unset.extend(
                    f"attrs.{encoded}.{member}"
                    for member in REPLACEABLE_MEMBERS
                    if member not in instance
                )
            required = [(encoded, None) for encoded in fragment.attrs]
            if await repo.update_existing(
                entity_id, required, set_fields, unset, [_geo_view(fragment)]
            ):
                names = [decode_field(encoded) for encoded in fragment.attrs]
                return AttributeOutcome(updated=names)
        return await self._modify(
            repo, entity_id, lambda doc: update_attributes(doc, fragment, utc_now())
        )

    async def partial_update_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        payload: object,
        terms: TermMap,
    ) -> None:
        check_uri(entity_id, "entity id")
        name = terms.expand(check_name(attr, "attribute name"))
        encoded = encode_field(name)
        repo = await self._repo(tenant, for_write=False)
        if isinstance(payload, dict) and "datasetId" not in payload:
            now = utc_now()
            fast = _partial_update_fields(payload, attr, encoded, terms, now)
            if fast is not None:
                kind, set_fields = fast
                geo = {"attrs": {encoded: {"type": kind}}}
                if await repo.update_existing(entity_id, [(encoded, kind)], set_fields, (), [geo]):
                    return
        await self._modify(
            repo,
            entity_id,
            lambda doc: partial_update_attribute(doc, attr, encoded, payload, terms, utc_now()),
        )

    async def replace_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        payload: object,
        terms: TermMap,
    ) -> None:
        check_uri(entity_id, "entity id")
        name = terms.expand(check_name(attr, "attribute name"))
        encoded = encode_field(name)
        instances = parse_attribute(payload, attr, terms, utc_now())
        repo = await self._repo(tenant, for_write=False)
        await self._modify(
            repo,
            entity_id,
            lambda doc: replace_attribute(doc, attr, encoded, instances, utc_now()),
        )

    async def delete_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        terms: TermMap,
        *,
        dataset_id: str | None,
        delete_all: bool,
    ) -> None:
        check_uri(entity_id, "entity id")
        if dataset_id is not None:
            check_uri(dataset_id, "datasetId")
        name = terms.expand(check_name(attr, "attribute name"))
        repo = await self._repo(tenant, for_write=False)
        await self._modify(
            repo,
            entity_id,
            lambda doc: delete_attribute(
                doc,
                attr,
                encode_field(name),
                utc_now(),
                dataset_id=dataset_id,
                delete_all=delete_all,
            ),
        )

    # --- clause 5.6.7-5.6.10, 5.6.20: batch operations ------------------------------------

    async def batch(
        self,
        tenant: str | None,
        kind: BatchKind,
        items: list[tuple[object, TermMap]],
        *,
        option: str | None = None,
    ) -> BatchResult:
        """Run a batch operation; each item fails or succeeds on its own."""
        if kind == "delete":
            return await self._batch_delete(tenant, [payload for payload, _ in items])
        result = BatchResult()
        now = utc_now()
        parsed: list[tuple[str, object, TermMap]] = []
        for payload, terms in items:
            try:
                parsed.append((entity_id_of(payload), payload, terms))
            except NgsiLdError as error:
                result.errors.append((_raw_id(payload), error))
        repo = await self._repo(tenant, for_write=True)
        if kind in ("create", "upsert"):
            docs: list[Document] = []
            for entity_id, payload, terms in parsed:
                try:
                    docs.append(build_document(payload, terms, now))
                except NgsiLdError as error:
                    result.errors.append((entity_id, error))
            docs = _last_wins(docs) if kind == "upsert" else docs
            if kind == "create":
                failures = await repo.insert_many(docs) if docs else {}
                created = {doc["_id"] for i, doc in enumerate(docs) if i not in failures}
            else:
                created, failures = (
                    await repo.upsert_many(docs, replace=option != "update")
                    if docs
                    else (set(), {})
                )
            for index, doc in enumerate(docs):
                if index in failures:
                    result.errors.append((doc["_id"], failures[index]))
                else:
                    result.success.append(doc["_id"])
            result.created = set(created)
            return result
        for entity_id, payload, terms in parsed:
            try:
                if kind == "update":
                    outcome = await self.append_attributes(
                        tenant, entity_id, payload, terms, no_overwrite=option == "noOverwrite"
                    )
                    del outcome
                else:
                    await self.merge_entity(tenant, entity_id, payload, terms)
                result.success.append(entity_id)
            except NgsiLdError as error:
                result.errors.append((entity_id, error))
        return result

    async def _batch_delete(self, tenant: str | None, ids: list[object]) -> BatchResult:
        result = BatchResult()
        valid: list[str] = []
        for raw in ids:
            try:
                valid.append(check_uri(raw, "entity id"))
            except NgsiLdError as error:
                result.errors.append((str(raw), error))
        repo = await self._repo(tenant, for_write=False)
        existing = await repo.existing_ids(valid) if valid else set()
        for entity_id in valid:
            if entity_id in existing:
                result.success.append(entity_id)
            else:
                result.errors.append(
                    (entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                )
        if existing:
            await repo.delete_many(sorted(existing))
        return result

    # --- clause 5.7: query and discovery ---------------------------------------------------

    async def query_entities(
        self, tenant: str | None, query: EntityQuery
    ) -> tuple[list[Document], int | None]:
        repo = await self._repo(tenant, for_write=False)
        mongo = _mongo_query(query)
        docs = await repo.find(mongo, skip=query.offset, limit=query.limit) if query.limit else []
        total = await repo.count(mongo) if query.count else None
        return docs, total

    async def type_attribute_pairs(
        self, tenant: str | None, types: Sequence[str] = ()
    ) -> list[tuple[str, str | None, int]]:
        repo = await self._repo(tenant, for_write=False)
        return await repo.type_attribute_pairs({"type": {"$in": list(types)}} if types else {})

    async def entity_count(self, tenant: str | None, type_iri: str) -> int:
        repo = await self._repo(tenant, for_write=False)
        return await repo.count({"type": type_iri})

    async def attribute_count(self, tenant: str | None, attribute_iri: str) -> int:
        repo = await self._repo(tenant, for_write=False)
        return await repo.count({"an": attribute_iri})

    async def attribute_kinds(
        self, tenant: str | None, attribute_iris: Sequence[str], type_iri: str | None = None
    ) -> dict[str, set[str]]:
        """The attribute kinds (Property, Relationship, ...) in use for each attribute."""
        repo = await self._repo(tenant, for_write=False)
        query: dict[str, Any] = {"an": {"$in": list(attribute_iris)}}
        if type_iri is not None:
            query["type"] = type_iri
        kinds: dict[str, set[str]] = {iri: set() for iri in attribute_iris}
        for doc in await repo.attribute_kinds(query, attribute_iris):
            for iri in attribute_iris:
                encoded = encode_field(iri)
                instance = doc.get("attrs", {}).get(encoded)
                if instance is not None:
                    kinds[iri].add(instance["type"])
                for other in doc.get("ds", {}).get(encoded, []):
                    kinds[iri].add(other["type"])
        return kinds


def _with_id(payload: object, entity_id: str) -> object:
    if not isinstance(payload, dict):
        raise BadRequestData("the payload must be a JSON object")
    given = payload.get("id")
    if given is not None and given != entity_id:
        raise BadRequestData(f"the payload's id {given!r} differs from the entity id in the URL")
    return {**payload, "id": entity_id}


def _fragment_for(
    payload: object, entity_id: str, terms: TermMap, *, allow_null: bool = False
) -> Fragment:
    if isinstance(payload, dict) and payload.get("id", entity_id) != entity_id:
        raise BadRequestData(
            f"the payload's id {payload.get('id')!r} differs from the entity id in the URL"
        )
    return parse_fragment(payload, terms, utc_now(), allow_null=allow_null)


def _all_default_instances(fragment: Fragment) -> bool:
    return bool(fragment.attrs) and all(
        len(instances) == 1 and "datasetId" not in instances[0]
        for instances in fragment.attrs.values()
    )


def _geo_view(fragment: Fragment) -> Document:
    return {"attrs": {encoded: instances[0] for encoded, instances in fragment.attrs.items()}}


def _partial_update_fields(
    payload: dict[str, Any], attr: str, encoded: str, terms: TermMap, now: Any
) -> tuple[str, dict[str, Any]] | None:
    """$set fields for a partial update that names its kind or value member; else None."""
    members = ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList")
    if "type" not in payload and not any(member in payload for member in members):
        return None
    instance = parse_instance(payload, attr, terms, now)
    if any(is_null_instance(sub) for sub in instance.get("sub", {}).values()):
        return None
    set_fields: dict[str, Any] = {"modifiedAt": now}
    for member, value in instance.items():
        if member == "sub":
            for sub_field, sub_instance in value.items():
                set_fields[f"attrs.{encoded}.sub.{sub_field}"] = sub_instance
        elif member != "createdAt":
            set_fields[f"attrs.{encoded}.{member}"] = value
    if instance["type"] == "GeoProperty":
        set_fields[f"gc.{encoded}"] = geometry_cells(instance["value"])
    return str(instance["type"]), set_fields


def _last_wins(docs: list[Document]) -> list[Document]:
    """In an upsert batch an id given twice keeps its last payload (the spec's order)."""
    by_id = {doc["_id"]: doc for doc in docs}
    return list(by_id.values())


def _raw_id(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("id", ""))
    return ""


def _mongo_query(query: EntityQuery) -> dict[str, Any]:
    mongo: dict[str, Any] = {}
    if query.ids:
        mongo["_id"] = {"$in": list(query.ids)}
    if query.id_pattern is not None:
        try:
            re.compile(query.id_pattern)
        except re.error as error:
            raise BadRequestData(f"idPattern is not a valid regular expression: {error}") from None
        pattern = {"$regex": query.id_pattern}
        mongo["_id"] = {**mongo.get("_id", {}), **pattern}
    if query.types:
        mongo["type"] = {"$in": list(query.types)}
    if query.attrs:
        mongo["an"] = {"$in": list(query.attrs)}
    return mongo
