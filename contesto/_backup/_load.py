"""`restore`: tenants from an archive into a store, only once every part checks out.

Order of work, so a restore never leaves a store half-written by surprise: every checksum
of the chosen tenants, then every refusal (an existing tenant without `replace`, a record
that is another tenant's), and only then the writes; per tenant its database, then its
shared records, then its tenant document, so the tenant answers again only once all of
its data is back. Running brokers and ingest processes are told to forget what they cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import decode
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from regional_tenants import MongoTenantDirectory, TenantRegistry, platform_database

from ._archive import ArchiveReader, Part
from ._errors import BackupError, RestoreConflict, TenantExists, UnknownTenant
from ._layout import DEFAULT_TENANT, SHARED, SharedCollection, StoreLayout, tenant_value
from ._meter import Meter

__all__ = ["Restored", "restore"]

Client = AsyncMongoClient[dict[str, Any]]
Document = dict[str, Any]
_DECODE: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=UTC)
_BATCH = 1000
_BATCH_BYTES = 8 << 20
_DUPLICATE_KEY = 11000
_INDEX_CONFLICTS = {85, 86}  # an index of that name exists with other keys or options
_SHARED = {(kind.place, kind.name): kind for kind in SHARED}


@dataclass(frozen=True, slots=True)
class Restored:
    """One tenant restored: its name in the archive and in the store, what was written,
    and what was left out (API keys spell the tenant they were issued for)."""

    source: str
    target: str
    documents: int
    left_out: dict[str, int]


async def restore(
    client: Client,
    layout: StoreLayout,
    archive: ArchiveReader,
    *,
    tenant: str | None,
    rename: str | None,
    replace: bool,
    meter: Meter,
    actor: str,
) -> list[Restored]:
    """Restore `tenant` (None: every tenant of the archive), as `rename` when given."""
    pairs = _pairs(archive.manifest.tenants, tenant, rename)
    parts = {source: archive.manifest.parts_of(source) for source, _ in pairs}
    meter.begin("verifying", sum(part.documents for chosen in parts.values() for part in chosen))
    archive.verify([part for chosen in parts.values() for part in chosen], meter.advance)
    for source, target in pairs:
        if not replace and await _exists(client, layout, target):
            raise TenantExists(
                f"the store already holds tenant {target!r}: restore it with --replace, "
                "or under another name with --as NEW_NAME"
            )
        for part in parts[source]:
            await _refuse_conflicts(client, layout, archive, part, target, renamed=source != target)
    meter.begin("restoring", sum(p.documents for chosen in parts.values() for p in chosen))
    done = []
    for source, target in pairs:
        done.append(await _restore_one(client, layout, archive, parts[source], target, meter))
        if target != DEFAULT_TENANT:
            directory = MongoTenantDirectory(client, layout.prefix)
            registry = TenantRegistry(client[platform_database(layout.prefix)], directory=directory)
            detail = {"from": source, "backup_of": archive.manifest.created_at.isoformat()}
            await registry.audit(target, actor, "tenant.restored", detail)
            await directory.announce(target)
    return [
        Restored(source, target, *counts)
        for (source, target), counts in zip(pairs, done, strict=True)
    ]


def _pairs(present: list[str], tenant: str | None, rename: str | None) -> list[tuple[str, str]]:
    if tenant is not None and tenant not in present:
        raise UnknownTenant(
            f"the archive holds no tenant {tenant!r} (it holds {', '.join(present)})"
        )
    chosen = present if tenant is None else [tenant]
    if rename is None:
        return [(name, name) for name in chosen]
    if len(chosen) != 1:
        raise BackupError("--as renames one tenant: name it with --tenant")
    return [(chosen[0], rename)]


async def _exists(client: Client, layout: StoreLayout, tenant: str) -> bool:
    if tenant != DEFAULT_TENANT:
        tenants = client[platform_database(layout.prefix)]["tenants"]
        if await tenants.find_one({"_id": tenant}, {"_id": 1}) is not None:
            return True
    database = client[layout.database_of("tenant", tenant)]
    return bool(await database.list_collection_names())


def _shared_kind(part: Part) -> SharedCollection | None:
    """The shared collection a part holds records of; None for the tenant's own database."""
    return None if part.place == "tenant" else _SHARED.get((part.place, part.collection))


def _records(
    archive: ArchiveReader, part: Part, target: str, *, renamed: bool
) -> Iterator[Document | RawBSONDocument]:
    """The part's documents as they are to be written for `target`."""
    kind = _shared_kind(part)
    if kind is None or not renamed:
        yield from archive.documents(part)
        return
    if not kind.renamed_copy or (kind.field == "_id" and target == DEFAULT_TENANT):
        return  # the default tenant has no tenant document
    for raw in archive.documents(part):
        record = kind.renamed(decode(raw.raw, _DECODE), target)
        if kind.fresh_ids:
            del record["_id"]
        yield record


async def _refuse_conflicts(
    client: Client,
    layout: StoreLayout,
    archive: ArchiveReader,
    part: Part,
    target: str,
    *,
    renamed: bool,
) -> None:
    """RestoreConflict when a record of the part is, in the store, another tenant's."""
    kind = _shared_kind(part)
    if kind is None or kind.merge or kind.field == "_id":
        return
    collection = client[layout.database_of(part.place, target)][part.collection]
    for batch in _batches(_records(archive, part, target, renamed=renamed)):
        clauses: list[Document] = []
        ids = [record["_id"] for record in batch if "_id" in record]
        if ids:
            clauses.append({"_id": {"$in": ids}})
        for fields in kind.unique:
            clauses += [{name: record.get(name) for name in fields} for record in batch]
        query = {"$or": clauses, kind.field: {"$ne": tenant_value(target)}}
        found = await collection.find_one(query) if clauses else None
        if found is not None:
            raise RestoreConflict(_conflict(kind, found))


def _conflict(kind: SharedCollection, found: Document) -> str:
    what = {name: found.get(name) for fields in kind.unique for name in fields} or found["_id"]
    owner = found.get(kind.field)
    return (
        f"{kind.name} record {what} belongs to tenant {owner!r} in the store, and a record "
        f"belongs to one tenant only: remove it from {owner!r} first, or restore into "
        "another store"
    )


async def _restore_one(
    client: Client,
    layout: StoreLayout,
    archive: ArchiveReader,
    parts: Sequence[Part],
    target: str,
    meter: Meter,
) -> tuple[int, dict[str, int]]:
    source = parts[0].tenant if parts else target
    renamed = source != target
    await client.drop_database(layout.database_of("tenant", target))
    for kind in SHARED:
        if not kind.merge:
            database = client[layout.database_of(kind.place, target)]
            await database[kind.name].delete_many(kind.query(target))
    if target != DEFAULT_TENANT:  # running processes stop serving it (within 5 s)
        await MongoTenantDirectory(client, layout.prefix).announce(target)
    # The tenant document last: the tenant exists again only once all its data does.
    last = sorted(parts, key=lambda part: (part.place, part.collection) == ("platform", "tenants"))
    written, left_out = 0, {}
    for part in last:
        collection = client[layout.database_of(part.place, target)][part.collection]
        shared = _shared_kind(part)
        records = _records(archive, part, target, renamed=renamed)
        if shared is not None and shared.field == "_id":
            count = await _put_tenant_documents(collection, records, meter)
        else:
            count = await _write(collection, records, meter, merge=bool(shared and shared.merge))
        written += count
        if count < part.documents:
            left_out[part.collection] = part.documents - count
        if shared is None or count:  # an empty shared collection's indexes are its owner's
            await _create_indexes(collection, part.indexes)
    if target != DEFAULT_TENANT:
        # A default tenant's data restored under a name needs the document it never had.
        tenants = client[platform_database(layout.prefix)]["tenants"]
        await tenants.update_one(
            {"_id": target}, {"$setOnInsert": {"createdAt": datetime.now(UTC)}}, upsert=True
        )
    return written, left_out


async def _write(
    collection: AsyncCollection[Document],
    records: Iterable[Document | RawBSONDocument],
    meter: Meter,
    *,
    merge: bool,
) -> int:
    written = 0
    for batch in _batches(records):
        try:
            await collection.insert_many(batch, ordered=not merge)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if not merge or any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
        written += len(batch)
        meter.advance(len(batch))
    return written


async def _put_tenant_documents(
    collection: AsyncCollection[Document],
    records: Iterable[Document | RawBSONDocument],
    meter: Meter,
) -> int:
    """Write the tenant document over one a first write may have created meanwhile (where
    tenants are created automatically)."""
    written = 0
    for record in records:
        await collection.replace_one({"_id": record["_id"]}, record, upsert=True)
        written += 1
        meter.advance(1)
    return written


async def _create_indexes(collection: AsyncCollection[Document], specs: list[Document]) -> None:
    for spec in specs:
        if spec.get("name") == "_id_":
            continue
        options = {key: value for key, value in spec.items() if key not in ("v", "key", "ns")}
        model = IndexModel(list(spec["key"].items()), **options)
        try:
            await collection.create_indexes([model])
        except OperationFailure as error:
            if error.code not in _INDEX_CONFLICTS:
                raise


def _batches(records: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    size = 0
    for record in records:
        batch.append(record)
        size += len(record.raw) if isinstance(record, RawBSONDocument) else 1024
        if len(batch) == _BATCH or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
