"""The dead-letter store: every message that could not become an entity, with the reason.

A dead letter keeps the raw payload and topic, so an operator can fix the device's
mapping and replay it through the same pipeline. An oversized or unstorable message, or a
payload over `keep_bytes`, keeps only its first `PREVIEW_BYTES` and its size: a dead
letter always fits in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from broker_bridge import RejectedFragment
from store_edge import Index, ensure_indexes, store_operation

from ._messages import InboundMessage, Rejection

__all__ = ["DeadLetter", "DeadLetters"]

COLLECTION = "dead_letters"
PREVIEW_BYTES = 1024
KEEP_BYTES = 1024 * 1024
_PREVIEW_ONLY = frozenset({"oversized", "unstorable"})


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A refused message: what arrived, when, for which tenant if known, and why."""

    id: str
    message: InboundMessage
    rejection: Rejection
    tenant: str | None
    dead_at: datetime
    fragment: dict[str, Any] | None = None
    # The payload's size as it arrived; `message.payload` is its first bytes when truncated.
    size: int = 0
    truncated: bool = False

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for the CLI and the API (payload as text when it is UTF-8)."""
        try:
            payload: str = self.message.payload.decode()
        except UnicodeDecodeError:
            if self.truncated:  # cut inside a character, most likely
                payload = self.message.payload.decode(errors="replace")
            else:
                payload = "0x" + self.message.payload.hex()
        found = self.rejection
        return {
            "id": self.id,
            "tenant": self.tenant,
            "topic": self.message.topic,
            "receivedAt": self.message.received_at.isoformat(),
            "deadAt": self.dead_at.isoformat(),
            "reason": found.reason,
            "message": found.message,
            "path": found.path,
            "hint": found.hint,
            "payload": payload,
            "size": self.size,
            "truncated": self.truncated,
            **({"fragment": self.fragment} if self.fragment is not None else {}),
        }


class DeadLetters:
    """Store, list, read and remove dead letters."""

    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], *, keep_bytes: int = KEEP_BYTES
    ) -> None:
        self._letters = database[COLLECTION]
        self._keep_bytes = keep_bytes

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._letters, [Index((("tenant", 1), ("dead", -1)))])

    @store_operation("storing dead letters")
    async def add(
        self,
        refused: list[tuple[InboundMessage, Rejection, str | None]],
        *,
        fragments: list[dict[str, Any] | None] | None = None,
    ) -> None:
        """Store refused messages durably; returns once the store confirmed."""
        if not refused:
            return
        now = datetime.now(UTC)
        extra = fragments or [None] * len(refused)
        documents = []
        for (message, rejection, tenant), fragment in zip(refused, extra, strict=True):
            payload = message.payload
            truncated = rejection.reason in _PREVIEW_ONLY or len(payload) > self._keep_bytes
            document: dict[str, Any] = {
                "tenant": tenant,
                "topic": message.topic[:PREVIEW_BYTES],
                "payload": payload[:PREVIEW_BYTES] if truncated else payload,
                "size": len(payload),
                "truncated": truncated,
                "received": message.received_at,
                "dead": now,
                "reason": rejection.reason,
                "message": rejection.message,
                "path": rejection.path,
                "hint": rejection.hint,
            }
            if fragment is not None and not truncated:
                document["fragment"] = fragment
            documents.append(document)
        await self._letters.insert_many(documents, ordered=True)

    async def add_refused_by_broker(self, refused: list[RejectedFragment]) -> None:
        """Fragments the broker refused for good, or a sharing rule could not place."""
        now = datetime.now(UTC)
        await self.add(
            [
                (
                    InboundMessage(f"(bridge)/{r.tenant}", orjson.dumps(r.fragment), now),
                    _bridge_rejection(r),
                    r.tenant,
                )
                for r in refused
            ],
            fragments=[r.fragment for r in refused],
        )

    @store_operation("listing dead letters")
    async def recent(
        self, *, tenant: str | None = None, reason: str | None = None, limit: int = 50
    ) -> list[DeadLetter]:
        """The newest first; `tenant` and `reason` narrow the list."""
        query: dict[str, Any] = {}
        if tenant is not None:
            query["tenant"] = tenant
        if reason is not None:
            query["reason"] = reason
        cursor = self._letters.find(query, sort=[("dead", DESCENDING)], limit=limit)
        return [_letter(doc) async for doc in cursor]

    @store_operation("counting dead letters")
    async def count(self, *, tenant: str | None = None) -> int:
        return await self._letters.count_documents({} if tenant is None else {"tenant": tenant})

    @store_operation("reading a dead letter")
    async def get(self, letter_id: str) -> DeadLetter | None:
        try:
            key = ObjectId(letter_id)
        except InvalidId:
            return None
        doc = await self._letters.find_one({"_id": key})
        return None if doc is None else _letter(doc)

    @store_operation("removing dead letters")
    async def remove(self, letter_ids: list[str]) -> int:
        keys = [ObjectId(i) for i in letter_ids if ObjectId.is_valid(i)]
        if not keys:
            return 0
        result = await self._letters.delete_many({"_id": {"$in": keys}})
        return result.deleted_count


def _bridge_rejection(refused: RejectedFragment) -> Rejection:
    if refused.kind == "routing":
        return Rejection(
            "not-in-region",
            refused.reason,
            "$.location",
            "check the device's location; the entity is kept by its owner, but not shared",
        )
    return Rejection(
        "rejected-by-broker",
        f"the broker answered {refused.status}: {refused.reason}",
        "$",
        "fix the device's mapping so the entity is valid NGSI-LD, then replay",
    )


def _letter(doc: dict[str, Any]) -> DeadLetter:
    received = doc["received"]
    payload = bytes(doc["payload"])
    return DeadLetter(
        id=str(doc["_id"]),
        message=InboundMessage(doc["topic"], payload, received),
        rejection=Rejection(
            doc["reason"], doc["message"], doc.get("path", ""), doc.get("hint", "")
        ),
        tenant=doc.get("tenant"),
        dead_at=doc["dead"],
        fragment=doc.get("fragment"),
        size=doc.get("size", len(payload)),
        truncated=doc.get("truncated", False),
    )
