"""Each type's id ranges of one tenant and how many entities each holds, kept in step with
every write of the broker: a page of a type alone is then one bounded range read, and its
count a sum of the ranges' counts (see `_query/_pages.py`, docs/query.md "Pages of a type").

Stored in the tenant's `type_ranges` collection, one document per range
(`{_id: "<type>\\x00<lo>", t, lo, hi, n}`), beside a marker (`_id: "\\x00ready"`) saying the
ranges count every entity. A tenant written before the ranges existed has no marker: the
first process to open it counts its entities once (the others wait for it).
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import suppress
from itertools import pairwise
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from context_broker._query._pages import BUCKET_SIZE, MAX_BUCKET, Bucket, bounds

Document = dict[str, Any]
Change = tuple[str, str, int]
"""(type, entity id, +1 when the entity gained the type, -1 when it lost it)."""

_MARKER = "\x00ready"
_BUILD_STALE_S = 600.0
"""A count left unfinished this long (its process died) is taken over by another."""
_GAP_RETRIES = 6


def _key(type_iri: str, lo: str) -> str:
    return f"{type_iri}\x00{lo}"


def _stamp(type_iri: str) -> str:
    """The type's write stamp: every change of its ranges moves it, after the change."""
    return f"{type_iri}\x01"


def type_changes(entity_id: str, before: object, after: object) -> list[Change]:
    """The changes of an entity whose types went from `before` to `after` (lists of types,
    or one type as a string)."""
    old, new = stored_types(before), stored_types(after)
    return [(t, entity_id, 1) for t in sorted(new - old)] + [
        (t, entity_id, -1) for t in sorted(old - new)
    ]


class TypeRanges:
    """One tenant's id ranges per type, their counts, and the writes that keep them."""

    def __init__(
        self, database: AsyncDatabase[Document], entities: AsyncCollection[Document]
    ) -> None:
        self.ranges: AsyncCollection[Document] = database["type_ranges"]
        self.entities = entities
        self._cache: dict[str, list[Bucket]] = {}
        # The ranges a query read last, with the type's stamp read before them: a query
        # whose stamp has not moved reads no range at all.
        self._read: dict[str, tuple[int, list[Bucket]]] = {}

    async def prepare(self) -> None:
        """Index the ranges by type and make sure they count every entity: a tenant written
        before they existed is counted once, by the first process that opens it."""
        await self.ranges.create_index([("t", ASCENDING)])
        while True:
            marker = await self.ranges.find_one({"_id": _MARKER})
            if marker is not None and marker.get("state") == "ready":
                return
            now = time.time()
            if marker is None:
                try:
                    await self.ranges.insert_one({"_id": _MARKER, "state": "counting", "at": now})
                except DuplicateKeyError:
                    continue
            elif now - marker["at"] > _BUILD_STALE_S:
                taken = await self.ranges.update_one(
                    {"_id": _MARKER, "at": marker["at"]}, {"$set": {"at": now}}
                )
                if taken.modified_count != 1:
                    continue
            else:
                await asyncio.sleep(0.2)
                continue
            await self._count_all()
            await self.ranges.update_one({"_id": _MARKER}, {"$set": {"state": "ready"}})
            return

    async def _count_all(self) -> None:
        """Cut every type's ranges from its entities' ids (one pass over the tenant)."""
        await self.ranges.delete_many({"t": {"$exists": True}})
        by_type: dict[str, list[str]] = {}
        async for doc in self.entities.find({}, {"_id": 1, "type": 1}, batch_size=10_000):
            for type_iri in stored_types(doc.get("type")):
                by_type.setdefault(type_iri, []).append(doc["_id"])
        for type_iri, ids in by_type.items():
            ids.sort()
            docs = [_document(type_iri, bucket) for bucket in bounds(ids)]
            for first in range(0, len(docs), 1000):
                await self.ranges.insert_many(docs[first : first + 1000])
        await self._moved(by_type)

    async def of(self, type_iri: str) -> list[Bucket]:
        """The type's ranges in id order; a range grown past MAX_BUCKET is cut first. Read
        again only when the type's stamp moved since they were last read here."""
        stamp = await self._stamp_of(type_iri)
        known = self._read.get(type_iri)
        if known is not None and known[0] == stamp:
            return known[1]
        buckets = await self._load(type_iri)
        if any(bucket.n > MAX_BUCKET for bucket in buckets):
            for bucket in buckets:
                if bucket.n > MAX_BUCKET:
                    await self._split(type_iri, bucket)
            await self._moved({type_iri})
            stamp = await self._stamp_of(type_iri)
            buckets = await self._load(type_iri)
        buckets = buckets or [Bucket("", None, 0)]
        self._read[type_iri] = (stamp, buckets)
        return buckets

    async def _stamp_of(self, type_iri: str) -> int:
        found = await self.ranges.find_one({"_id": _stamp(type_iri)})
        return 0 if found is None else int(found["w"])

    async def _moved(self, types: Iterable[str]) -> None:
        """Move the stamps of types whose ranges changed (after the change)."""
        for type_iri in types:
            try:
                await self.ranges.update_one(
                    {"_id": _stamp(type_iri)}, {"$inc": {"w": 1}}, upsert=True
                )
            except DuplicateKeyError:  # created by another writer meanwhile
                await self.ranges.update_one({"_id": _stamp(type_iri)}, {"$inc": {"w": 1}})

    async def _load(self, type_iri: str) -> list[Bucket]:
        rows = [row async for row in self.ranges.find({"t": type_iri}, batch_size=100_000)]
        buckets = sorted((Bucket(row["lo"], row["hi"], row["n"]) for row in rows), key=_lo)
        self._cache[type_iri] = buckets
        return buckets

    async def _split(self, type_iri: str, bucket: Bucket) -> None:
        """Cut a grown range into ranges of BUCKET_SIZE. Only when its count agrees with the
        entities it holds (no write in flight there): the range first shrinks to its first
        part, then the others are added; a write that finds its id in neither meanwhile
        tries again."""
        condition: dict[str, Any] = {"type": type_iri, "_id": {"$gte": bucket.lo}}
        if bucket.hi is not None:
            condition["_id"]["$lt"] = bucket.hi
        ids = sorted([doc["_id"] async for doc in self.entities.find(condition, {"_id": 1})])
        if len(ids) != bucket.n:
            return
        parts = bounds(ids, BUCKET_SIZE)
        first, rest = parts[0], parts[1:]
        shrunk = await self.ranges.update_one(
            {"_id": _key(type_iri, bucket.lo), "hi": bucket.hi, "n": bucket.n},
            {"$set": {"hi": first.hi, "n": first.n}},
        )
        if shrunk.modified_count != 1:
            return
        last = Bucket(rest[-1].lo, bucket.hi, rest[-1].n)
        await self.ranges.insert_many([_document(type_iri, b) for b in [*rest[:-1], last]])

    async def count(self, changes: Iterable[Change]) -> None:
        """Count entities that gained or lost a type, in the range of their id."""
        pending = [change for change in changes if change[2]]
        types = {change[0] for change in pending}
        try:
            await self._count(pending)
        finally:
            await self._moved(types)

    async def _count(self, pending: list[Change]) -> None:
        for attempt in range(_GAP_RETRIES + 1):
            if not pending:
                return
            if attempt:
                await asyncio.sleep(0.01 * 2**attempt)
            pending = await self._count_once(pending, fresh=attempt > 0)
        for type_iri in {change[0] for change in pending}:
            await self._close_gaps(type_iri)
            await self._moved({type_iri})
        pending = await self._count_once(pending, fresh=True)
        if pending:
            raise RuntimeError(f"the id ranges of {pending[0][0]} do not cover {pending[0][1]}")

    async def _count_once(self, changes: Sequence[Change], *, fresh: bool) -> list[Change]:
        """Apply the changes to the ranges they fall in; return those that found none."""
        types = {change[0] for change in changes}
        for type_iri in types:
            if fresh or type_iri not in self._cache:
                await self._load(type_iri)
        sums: Counter[tuple[str, str, str | None]] = Counter()
        missed: list[Change] = []
        for type_iri, entity_id, delta in changes:
            buckets = self._cache[type_iri]
            if not buckets:
                await self._first_range(type_iri)
                buckets = await self._load(type_iri)
            bucket = _holding(buckets, entity_id)
            if bucket is None:
                missed.append((type_iri, entity_id, delta))
            else:
                sums[type_iri, bucket.lo, bucket.hi] += delta
        groups = [(key, delta) for key, delta in sums.items() if delta]
        for (type_iri, lo, hi), delta in groups:
            done = await self.ranges.update_one(
                {"_id": _key(type_iri, lo), "hi": hi}, {"$inc": {"n": delta}}
            )
            if done.matched_count != 1:  # cut meanwhile: count its entities again
                missed.extend(
                    change
                    for change in changes
                    if change[0] == type_iri and _within(change[1], lo, hi)
                )
        return missed

    async def _first_range(self, type_iri: str) -> None:
        """The one range of a type no entity had before."""
        with suppress(DuplicateKeyError):  # else created and cut by another writer meanwhile
            await self.ranges.update_one(
                {"_id": _key(type_iri, ""), "hi": None},
                {"$setOnInsert": {"t": type_iri, "lo": "", "n": 0}},
                upsert=True,
            )

    async def _close_gaps(self, type_iri: str) -> None:
        """Ranges left apart by a cut that never finished: each gap joins the range below
        it, whose count is taken afresh from its entities."""
        buckets = await self._load(type_iri)
        for below, above in pairwise(buckets):
            if below.hi == above.lo:
                continue
            condition = {"type": type_iri, "_id": {"$gte": below.lo, "$lt": above.lo}}
            n = len([doc async for doc in self.entities.find(condition, {"_id": 1})])
            await self.ranges.update_one(
                {"_id": _key(type_iri, below.lo)}, {"$set": {"hi": above.lo, "n": n}}
            )
        if buckets and buckets[-1].hi is not None:
            last = buckets[-1]
            condition = {"type": type_iri, "_id": {"$gte": last.lo}}
            n = len([doc async for doc in self.entities.find(condition, {"_id": 1})])
            await self.ranges.update_one(
                {"_id": _key(type_iri, last.lo)}, {"$set": {"hi": None, "n": n}}
            )


def stored_types(stored: object) -> set[str]:
    """The types an entity document holds (a list, or one type as a string)."""
    if isinstance(stored, str):
        return {stored}
    if isinstance(stored, list | tuple | set):
        return {item for item in stored if isinstance(item, str)}
    return set()


def _lo(bucket: Bucket) -> str:
    return bucket.lo


def _within(entity_id: str, lo: str, hi: str | None) -> bool:
    return lo <= entity_id and (hi is None or entity_id < hi)


def _holding(buckets: Sequence[Bucket], entity_id: str) -> Bucket | None:
    """The range whose ids hold `entity_id` (the last one starting at or below it), if it
    reaches that far."""
    index = bisect_right(buckets, entity_id, key=_lo) - 1
    if index < 0 or not _within(entity_id, buckets[index].lo, buckets[index].hi):
        return None
    return buckets[index]


def _document(type_iri: str, bucket: Bucket) -> Document:
    return {
        "_id": _key(type_iri, bucket.lo),
        "t": type_iri,
        "lo": bucket.lo,
        "hi": bucket.hi,
        "n": bucket.n,
    }
