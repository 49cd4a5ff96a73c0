"""`back_up`: chosen tenants (or all) of a store into one archive, streamed collection by
collection, with their indexes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from regional_tenants import platform_database

from ._archive import ArchiveWriter, Manifest, Part
from ._errors import UnknownTenant
from ._layout import DEFAULT_TENANT, SHARED, Place, StoreLayout
from ._meter import Meter

__all__ = ["back_up", "product_version", "stored_tenants"]

Client = AsyncMongoClient[dict[str, Any]]
_RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
_BATCH = 1000


def product_version() -> str:
    try:
        return version("contesto")
    except PackageNotFoundError:
        return "unknown"


async def stored_tenants(client: Client, layout: StoreLayout) -> list[str]:
    """Every tenant of the store: the default tenant when its database exists, then every
    tenant with a tenant document (onboarded or created by a first write), by name."""
    tenants = client[platform_database(layout.prefix)]["tenants"]
    names = [str(doc["_id"]) async for doc in tenants.find({}, {"_id": 1}, sort=[("_id", 1)])]
    if layout.prefix in await client.list_database_names():
        names.insert(0, DEFAULT_TENANT)
    return names


async def back_up(
    client: Client,
    layout: StoreLayout,
    tenants: Sequence[str] | None,
    out: Path,
    meter: Meter,
) -> Manifest:
    """Write `tenants` (None: every tenant) into the archive `out`; the manifest written.

    UnknownTenant, before anything is written, for a tenant the store does not hold.
    """
    present = await stored_tenants(client, layout)
    chosen = present if tenants is None else list(dict.fromkeys(tenants))
    missing = [name for name in chosen if name not in present]
    if missing:
        raise UnknownTenant(f"the store holds no tenant {', '.join(map(repr, missing))}")
    sources = [source for name in chosen for source in await _sources(client, layout, name)]
    meter.begin("backing up", sum([await _count(*source) for source in sources]))
    writer = ArchiveWriter(out)
    try:
        parts = [await _write_part(writer, *source, meter) for source in sources]
        manifest = Manifest(
            product_version(),
            datetime.now(UTC),
            layout.prefix,
            layout.pipeline_database,
            tuple(parts),
        )
        writer.close(manifest)
    except BaseException:
        writer.abandon()
        raise
    return manifest


Source = tuple[str, Place, AsyncCollection[dict[str, Any]], dict[str, Any]]


async def _sources(client: Client, layout: StoreLayout, tenant: str) -> list[Source]:
    """The collections of the tenant's database (all of them), then its shared records."""
    database = client[layout.database_of("tenant", tenant)]
    names = sorted(
        name for name in await database.list_collection_names() if not name.startswith("system.")
    )
    own: list[Source] = [(tenant, "tenant", database[name], {}) for name in names]
    shared: list[Source] = [
        (
            tenant,
            kind.place,
            client[layout.database_of(kind.place, tenant)][kind.name],
            kind.query(tenant),
        )
        for kind in SHARED
        if not (kind.name == "tenants" and tenant == DEFAULT_TENANT)
    ]
    return own + shared


async def _count(
    _tenant: str, _place: Place, collection: AsyncCollection[dict[str, Any]], query: dict[str, Any]
) -> int:
    if not query:
        return await collection.estimated_document_count()
    return await collection.count_documents(query)


async def _write_part(
    writer: ArchiveWriter,
    tenant: str,
    place: Place,
    collection: AsyncCollection[dict[str, Any]],
    query: dict[str, Any],
    meter: Meter,
) -> Part:
    indexes = [dict(spec) async for spec in await collection.list_indexes()]
    part = writer.part(tenant, place, collection.name)
    raw = collection.with_options(codec_options=_RAW)
    pending = 0
    try:
        async for document in raw.find(query, batch_size=_BATCH):
            part.write(document.raw)
            pending += 1
            if pending == _BATCH:
                meter.advance(pending)
                pending = 0
    finally:
        digest = part.close()
    meter.advance(pending)
    return Part(tenant, place, collection.name, part.documents, digest, indexes)
