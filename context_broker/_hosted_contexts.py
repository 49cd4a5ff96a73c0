"""User @contexts served by the broker itself (clause 5.13, /jsonldContexts)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from context_broker._errors import BadRequestData, ResourceNotFound
from context_broker._jsonld import ContextResolver, FetchContext
from context_broker._store import Store, translated
from context_broker._time import utc_now

CONTEXTS_PATH = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED_URL = re.compile(r"^https?://[^/]+/ngsi-ld/v1/jsonldContexts/([A-Za-z0-9_-]+)$")


@dataclass(slots=True)
class HostedContext:
    local_id: str
    document: dict[str, Any]
    created_at: datetime
    hits: int = 0


class HostedContexts:
    """The hosted contexts, kept in the platform database and in memory for resolution."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_id: dict[str, HostedContext] = {}

    async def load(self) -> None:
        async with translated("@context store"):
            async for doc in self._store.contexts.find({}):
                self._by_id[doc["_id"]] = HostedContext(
                    doc["_id"], doc["document"], doc["createdAt"]
                )

    def fetcher(self, remote: FetchContext) -> FetchContext:
        """A fetch function that serves hosted contexts locally and fetches the rest."""

        async def fetch(url: str) -> object:
            match = _HOSTED_URL.match(url)
            if match is not None and match.group(1) in self._by_id:
                hosted = self._by_id[match.group(1)]
                hosted.hits += 1
                return hosted.document
            return await remote(url)

        return fetch

    async def add(self, document: object) -> HostedContext:
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData("a context to host must be a JSON object with an @context member")
        context = document["@context"]
        if not isinstance(context, dict | list | str):
            raise BadRequestData("@context must be an object, an array or a URL")
        hosted = HostedContext(uuid.uuid4().hex, {"@context": context}, utc_now())
        async with translated("@context store"):
            await self._store.contexts.insert_one(
                {
                    "_id": hosted.local_id,
                    "document": hosted.document,
                    "createdAt": hosted.created_at,
                }
            )
        self._by_id[hosted.local_id] = hosted
        return hosted

    def get(self, local_id: str) -> HostedContext:
        hosted = self._by_id.get(local_id)
        if hosted is None:
            raise ResourceNotFound(f"no @context with id {local_id!r} is hosted here")
        return hosted

    def all(self) -> list[HostedContext]:
        return list(self._by_id.values())

    async def delete(self, local_id: str, resolver: ContextResolver) -> None:
        self.get(local_id)
        async with translated("@context store"):
            await self._store.contexts.delete_one({"_id": local_id})
        del self._by_id[local_id]
        for url in resolver.cached_urls():
            match = _HOSTED_URL.match(url)
            if match is not None and match.group(1) == local_id:
                resolver.evict(url)
