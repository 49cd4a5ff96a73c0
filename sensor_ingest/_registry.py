"""The device registry on MongoDB: service groups and devices, and the hot-path lookup.

Two collections in the database the caller gives: `service_groups`, unique by
(format, group) across all tenants, since an API key names exactly one tenant, and
`devices`, unique by (format, group, device_id). Every read and write is scoped to one
tenant; `resolve` answers from a short-lived in-process cache.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from bson.errors import InvalidDocument
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from store_edge import (
    DuplicateRecord,
    Index,
    StoreError,
    StoreUnavailable,
    ensure_indexes,
    translated,
)

from ._devices import (
    AttributeMapping,
    Binding,
    Device,
    ServiceGroup,
    StaticAttribute,
    bind,
    bind_device_only,
)
from ._messages import DeviceKey, Format, Rejection

__all__ = [
    "AmbiguousDevice",
    "DeviceRegistry",
    "RegistryConflict",
    "RegistryError",
    "RegistryUnavailable",
]

Document = dict[str, Any]
CacheKey = tuple[str, str, str]
K = TypeVar("K")
V = TypeVar("V")
Record = ServiceGroup | Device


class RegistryError(Exception):
    """The root of the registry's errors."""


class RegistryConflict(RegistryError):
    """The group or device exists already: in this tenant, or under another tenant's key."""


class AmbiguousDevice(RegistryError):
    """A device id the tenant uses in several groups, named without its group."""


class RegistryUnavailable(RegistryError, StoreUnavailable):
    """The store cannot be reached (for now): the operation may be retried."""


@asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    try:
        async with translated(what):
            yield
    except RegistryError:
        raise
    except DuplicateRecord as error:
        raise RegistryConflict(f"{what} already exists") from error.__cause__
    except StoreUnavailable as error:
        raise RegistryUnavailable(
            f"the device registry's store is not reachable ({what}): {error.__cause__}"
        ) from error.__cause__
    except StoreError as error:
        if isinstance(error.__cause__, InvalidDocument):
            raise RegistryError(f"{what} cannot be stored: {error.__cause__}") from error.__cause__
        raise RegistryError(
            f"the device registry's store refused {what}: {error.__cause__}"
        ) from error.__cause__
    except OverflowError as error:
        raise RegistryError(f"{what} cannot be stored: {error}") from error


class DeviceRegistry:
    """Service groups and devices of every tenant, in one database.

    `resolve` caches each answer (a binding or a rejection) for `cache_ttl_s`, and each
    service group as read, so that the devices of a group cost one read of the group per
    `cache_ttl_s`, not one each; writes made through this instance drop the entries they
    affect at once, writes made elsewhere are seen after at most `cache_ttl_s`.
    """

    def __init__(
        self,
        database: AsyncDatabase[Document],
        *,
        cache_ttl_s: float = 5.0,
        cache_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.groups: AsyncCollection[Document] = database["service_groups"]
        self.devices: AsyncCollection[Document] = database["devices"]
        self.cache_ttl_s = cache_ttl_s
        self._cache_entries = cache_entries
        self._clock = clock
        self._cache: dict[CacheKey, tuple[float, Binding | Rejection]] = {}
        self._groups: dict[tuple[str, str], tuple[float, Document | None]] = {}
        self._generation = 0

    async def ensure_indexes(self) -> None:
        """The uniqueness rules and the tenant-scoped listings' indexes (idempotent)."""
        async with _translated("indexes"):
            await ensure_indexes(
                self.groups,
                [Index((("format", 1), ("group", 1)), unique=True), Index((("tenant", 1),))],
            )
            await ensure_indexes(
                self.devices,
                [
                    Index((("format", 1), ("group", 1), ("device_id", 1)), unique=True),
                    Index((("tenant", 1), ("device_id", 1))),
                ],
            )

    # ---------------------------------------------------------------- service groups

    async def put_group(self, group: ServiceGroup, *, create: bool = False) -> bool:
        """Store a group (replacing the tenant's own one); True when it is new.

        RegistryConflict when its key belongs to another tenant (as a group of any format, or
        as devices provisioned without one), or, with `create`, when the tenant already has it.
        """
        return await self.put(group, create=create)

    async def get_group(self, tenant: str, format: Format, group: str) -> ServiceGroup | None:
        async with _translated(f"service group {group!r}"):
            found = await self.groups.find_one(
                {"format": format, "group": group, "tenant": tenant}, {"_id": 0}
            )
        return None if found is None else _group_from(found)

    async def list_groups(self, tenant: str) -> list[ServiceGroup]:
        """The tenant's groups, by format and key."""
        async with _translated("service groups"):
            found = (
                await self.groups.find({"tenant": tenant}, {"_id": 0})
                .sort([("format", ASCENDING), ("group", ASCENDING)])
                .to_list()
            )
        return [_group_from(document) for document in found]

    async def all_groups(self) -> list[ServiceGroup]:
        """Every tenant's groups (for platform tasks such as MQTT access lists)."""
        async with _translated("service groups"):
            found = (
                await self.groups.find({}, {"_id": 0})
                .sort([("tenant", ASCENDING), ("format", ASCENDING), ("group", ASCENDING)])
                .to_list()
            )
        return [_group_from(document) for document in found]

    async def delete_group(self, tenant: str, format: Format, group: str) -> bool:
        """Remove the tenant's group (its devices stay); False when it has none such."""
        where = {"format": format, "group": group}
        return await self._delete(tenant, where, f"service group with apikey {group!r} ({format})")

    # ----------------------------------------------------------------------- devices

    async def put_device(self, device: Device, *, create: bool = False) -> bool:
        """Store a device (replacing the tenant's own record); True when it is new.

        RegistryConflict when its group's key belongs to another tenant, or its
        (format, group, device_id) is another tenant's, or, with `create`, when the
        tenant already has it.
        """
        return await self.put(device, create=create)

    async def get_device(
        self,
        tenant: str,
        device_id: str,
        *,
        format: Format | None = None,
        group: str | None = None,
    ) -> Device | None:
        """The tenant's device with this id (in that group, when given).

        AmbiguousDevice when the tenant has the id in several groups and none is named.
        """
        found = await self._find_devices(tenant, device_id, format, group)
        return _device_from(found[0]) if found else None

    async def list_devices(
        self, tenant: str, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[Device], int]:
        """One page of the tenant's devices, by id, and how many it has in all."""
        query = {"tenant": tenant}
        async with _translated("devices"):
            total = await self.devices.count_documents(query)
            cursor = self.devices.find(query, {"_id": 0}).sort(
                [("device_id", ASCENDING), ("format", ASCENDING), ("group", ASCENDING)]
            )
            found = await cursor.skip(offset).limit(limit).to_list()
        return [_device_from(document) for document in found], total

    async def delete_device(
        self,
        tenant: str,
        device_id: str,
        *,
        format: Format | None = None,
        group: str | None = None,
    ) -> bool:
        """Remove the tenant's device; False when it has none such.

        AmbiguousDevice when the tenant has the id in several groups and none is named.
        """
        found = await self._find_devices(tenant, device_id, format, group)
        return bool(found) and await self.remove(_device_from(found[0]))

    async def _find_devices(
        self, tenant: str, device_id: str, format: Format | None, group: str | None
    ) -> list[Document]:
        query: Document = {"tenant": tenant, "device_id": device_id}
        if format is not None:
            query["format"] = format
        if group is not None:
            query["group"] = group
        async with _translated(f"device {device_id!r}"):
            found = await self.devices.find(query, {"_id": 0}).limit(10).to_list()
        if len(found) > 1:
            places = ", ".join(f"{d['group']} ({d['format']})" for d in found)
            raise AmbiguousDevice(
                f"device id {device_id!r} is used in several groups: {places}; "
                "name the group (apikey) and, if needed, the format"
            )
        return found

    # ------------------------------------------------------- either kind of record

    async def put(self, record: Record, *, create: bool = False) -> bool:
        """Store a group or a device (replacing the tenant's own one); True when it is new.

        RegistryConflict when its key belongs to another tenant, or, with `create`, when
        the tenant already has it.
        """
        collection = self._collection(record)
        where = _key_of(record)
        async with _translated(_label(record)):
            if await self._key_taken(record):
                raise _taken(record.format, record.group)
            try:
                if create:
                    await collection.insert_one(_document_of(record))
                    created = True
                else:
                    result = await collection.replace_one(
                        {**where, "tenant": record.tenant}, _document_of(record), upsert=True
                    )
                    created = result.upserted_id is not None
            except DuplicateKeyError:
                owner = await collection.find_one(where, {"tenant": 1})
                if owner is not None and owner.get("tenant") == record.tenant:
                    raise RegistryConflict(f"{_label(record)} already exists") from None
                raise _taken(record.format, record.group) from None
        self._forget(record.format, record.group, _device_id(record))
        return created

    async def exists(self, record: Record) -> bool:
        """Whether the tenant has this group or device already."""
        async with _translated(_label(record)):
            found = await self._collection(record).find_one(
                {**_key_of(record), "tenant": record.tenant}, {"_id": 1}
            )
        return found is not None

    async def create_all(self, records: Sequence[Record]) -> None:
        """Create every record, or none: the ones written before a failure are removed."""
        created: list[Record] = []
        try:
            for record in records:
                await self.put(record, create=True)
                created.append(record)
        except RegistryError:
            for record in created:
                await self.remove(record)
            raise

    async def remove(self, record: Record) -> bool:
        """Remove the tenant's group (its devices stay) or device; False when it has none such."""
        return await self._delete(record.tenant, _key_of(record), _label(record))

    async def _delete(self, tenant: str, key: Document, label: str) -> bool:
        collection = self.devices if "device_id" in key else self.groups
        async with _translated(label):
            result = await collection.delete_one({**key, "tenant": tenant})
        self._forget(key["format"], key["group"], key.get("device_id"))
        return result.deleted_count == 1

    def _collection(self, record: Record) -> AsyncCollection[Document]:
        return self.devices if isinstance(record, Device) else self.groups

    async def _key_taken(self, record: Record) -> bool:
        """Whether another tenant holds the record's key (as a group, or as its devices)."""
        if isinstance(record, Device):
            owner = await self.groups.find_one(
                {"format": record.format, "group": record.group}, {"tenant": 1}
            )
            return owner is not None and owner.get("tenant") != record.tenant
        others = {"$ne": record.tenant}
        foreign = await self.devices.find_one(
            {"format": record.format, "group": record.group, "tenant": others}, {"_id": 1}
        ) or await self.groups.find_one({"group": record.group, "tenant": others}, {"_id": 1})
        return foreign is not None

    # ---------------------------------------------------------------------- hot path

    async def resolve(self, format: Format, key: DeviceKey) -> Binding | Rejection:
        """How a message of `key` becomes an entity, or why it cannot (unknown device).

        Raises RegistryUnavailable when the store fails: the message should be retried,
        not dead-lettered.
        """
        cache_key = (format, key.group, key.device)
        now = self._clock()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        known_group = self._groups.get((format, key.group))
        if known_group is not None and known_group[0] > now:
            group_doc, device_doc = known_group[1], await self._device_doc(format, key)
        else:
            group_doc, device_doc = await self._lookup(format, key)
        group = None if group_doc is None else _group_from(group_doc)
        device = None if device_doc is None else _device_from(device_doc)
        answer = _resolved(format, key, group, device)
        if generation == self._generation and self.cache_ttl_s > 0:
            expires, capacity = now + self.cache_ttl_s, self._cache_entries
            if known_group is not None and known_group[0] > now:
                expires = known_group[0]  # an answer is never older than the TTL
            else:
                _remember(self._groups, (format, key.group), group_doc, now, expires, capacity)
            _remember(self._cache, cache_key, answer, now, expires, capacity)
        return answer

    async def _device_doc(self, format: Format, key: DeviceKey) -> Document | None:
        async with _translated(f"device {key.device!r}"):
            return await self.devices.find_one(
                {"format": format, "group": key.group, "device_id": key.device}, {"_id": 0}
            )

    async def _lookup(
        self, format: Format, key: DeviceKey
    ) -> tuple[Document | None, Document | None]:
        """The group's and the device's documents, read side by side."""
        async with _translated(f"device {key.device!r}"):
            # Both reads finish, even when one fails: no query is left running unowned.
            group_doc, device_doc = await asyncio.gather(
                self.groups.find_one({"format": format, "group": key.group}, {"_id": 0}),
                self.devices.find_one(
                    {"format": format, "group": key.group, "device_id": key.device}, {"_id": 0}
                ),
                return_exceptions=True,
            )
            if isinstance(group_doc, BaseException):
                raise group_doc
            if isinstance(device_doc, BaseException):
                raise device_doc
        return group_doc, device_doc

    def clear_cache(self) -> None:
        """Forget every cached answer (e.g. after a bulk load made elsewhere)."""
        self._generation += 1
        self._cache.clear()
        self._groups.clear()

    def _forget(self, format: str, group: str, device_id: str | None = None) -> None:
        """Drop the cached answers a write may have changed: one device, or a whole group."""
        self._generation += 1
        if device_id is not None:
            self._cache.pop((format, group, device_id), None)
            return
        self._groups.pop((format, group), None)
        for cached in [k for k in self._cache if k[0] == format and k[1] == group]:
            del self._cache[cached]


def _remember(
    cache: dict[K, tuple[float, V]], key: K, value: V, now: float, expires: float, capacity: int
) -> None:
    """Cache a value until `expires`; the first entries go first (expired ones, or past
    `capacity`)."""
    cache.pop(key, None)  # re-inserted at the end: the dict stays about in expiry order
    while cache and (len(cache) >= capacity or next(iter(cache.values()))[0] <= now):
        del cache[next(iter(cache))]
    cache[key] = (expires, value)


def _resolved(
    format: Format, key: DeviceKey, group: ServiceGroup | None, device: Device | None
) -> Binding | Rejection:
    if group is not None and device is not None and device.tenant != group.tenant:
        group = None  # never mix two tenants' records (the writes refuse to make such pairs)
    if device is not None and group is not None:
        return bind(group, key.device, device)
    if device is not None and device.entity_type is not None:
        return bind_device_only(device)
    if group is not None and group.autoprovision:
        return bind(group, key.device)
    if device is not None:
        why = f"it has no entity_type and its group {key.group!r} ({format}) does not exist"
    elif group is not None:
        why = f"group {key.group!r} ({format}) does not autoprovision devices"
    else:
        why = f"neither the device nor a group {key.group!r} ({format}) is provisioned"
    return Rejection(
        "unknown-device",
        f"unknown device {key.device!r} of group {key.group!r} ({format}): {why}",
        "",
        f'provision it with POST /iot/devices (device_id "{key.device}", apikey "{key.group}", '
        f'format "{format}", and an entity_type unless its group gives one) or with '
        "`contesto devices provision FILE --tenant TENANT`; or provision its group with "
        "autoprovision on (POST /iot/services)",
    )


def _taken(format: str, group: str) -> RegistryConflict:
    return RegistryConflict(
        f"apikey {group!r} ({format}) belongs to another service (fiware-service): an API key "
        "names exactly one; choose another apikey"
    )


# ------------------------------------------------------------------ documents


def _key_of(record: Record) -> Document:
    """What makes the record unique across all tenants."""
    key = {"format": record.format, "group": record.group}
    if isinstance(record, Device):
        key["device_id"] = record.device_id
    return key


def _label(record: Record) -> str:
    """The record as messages name it."""
    where = f"{record.group!r} ({record.format})"
    if isinstance(record, Device):
        return f"device {record.device_id!r} in group {where}"
    return f"service group with apikey {where}"


def _device_id(record: Record) -> str | None:
    return record.device_id if isinstance(record, Device) else None


def _document_of(record: Record) -> Document:
    return _device_document(record) if isinstance(record, Device) else _group_document(record)


def _group_document(group: ServiceGroup) -> Document:
    return {
        **_shared_document(group),
        "autoprovision": group.autoprovision,
        "explicit_attributes": group.explicit_attributes,
        "timestamp_field": group.timestamp_field,
        "entity_id_prefix": group.entity_id_prefix,
    }


def _group_from(document: Mapping[str, Any]) -> ServiceGroup:
    return ServiceGroup(
        **_shared_fields(document),
        entity_type=document["entity_type"],
        autoprovision=document.get("autoprovision", True),
        explicit_attributes=document.get("explicit_attributes", False),
        timestamp_field=document.get("timestamp_field", "TimeInstant"),
        entity_id_prefix=document.get("entity_id_prefix"),
    )


def _device_document(device: Device) -> Document:
    return {
        **_shared_document(device),
        "device_id": device.device_id,
        "entity_id": device.entity_id,
    }


def _device_from(document: Mapping[str, Any]) -> Device:
    return Device(
        **_shared_fields(document),
        device_id=document["device_id"],
        entity_id=document.get("entity_id"),
        entity_type=document.get("entity_type"),
    )


def _shared_document(record: Record) -> Document:
    """The members groups and devices both have."""
    return {
        "tenant": record.tenant,
        "format": record.format,
        "group": record.group,
        "entity_type": record.entity_type,
        "model": record.model,
        "profile": record.profile,
        "attributes": [_mapping_document(a) for a in record.attributes],
        "static_attributes": [_static_document(s) for s in record.static_attributes],
    }


def _shared_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """The fields groups and devices both have, read from a stored document."""
    return {
        "tenant": document["tenant"],
        "format": cast(Format, document["format"]),
        "group": document["group"],
        "model": document.get("model"),
        "profile": document.get("profile"),
        "attributes": tuple(_mapping_from(a) for a in document.get("attributes", ())),
        "static_attributes": tuple(_static_from(s) for s in document.get("static_attributes", ())),
    }


def _mapping_document(mapping: AttributeMapping) -> Document:
    return {
        "object_id": mapping.object_id,
        "name": mapping.name,
        "kind": mapping.kind,
        "unit_code": mapping.unit_code,
        "scale": mapping.scale,
        "offset": mapping.offset,
    }


def _mapping_from(document: Mapping[str, Any]) -> AttributeMapping:
    return AttributeMapping(
        object_id=document["object_id"],
        name=document["name"],
        kind=document.get("kind", "Property"),
        unit_code=document.get("unit_code"),
        scale=float(document.get("scale", 1.0)),
        offset=float(document.get("offset", 0.0)),
    )


def _static_document(static: StaticAttribute) -> Document:
    # Any JSON value, kept as JSON text: keys like "$ref" and integers past 64 bits are fine.
    try:
        value = json.dumps(static.value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        message = f"static attribute {static.name!r}: its value is not JSON: {error}"
        raise RegistryError(message) from error
    return {"name": static.name, "kind": static.kind, "value": value}


def _static_from(document: Mapping[str, Any]) -> StaticAttribute:
    return StaticAttribute(
        name=document["name"], kind=document["kind"], value=json.loads(document["value"])
    )
