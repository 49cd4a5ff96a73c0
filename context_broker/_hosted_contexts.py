"""User @contexts served by the broker itself (clause 5.13, /jsonldContexts).

Each hosted context belongs to the tenant that added it (the `NGSILD-Tenant` header): only
that tenant lists, reads, deletes and uses it. Its URL resolves in the `Link` header or body
@context of that tenant's requests only; another tenant's request naming it gets
LdContextNotAvailable, as if the broker did not host it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from context_broker._errors import BadRequestData, LdContextNotAvailable, ResourceNotFound
from context_broker._jsonld import ContextResolver
from context_broker._store import Store, translated
from context_broker._time import utc_now

CONTEXTS_PATH = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED_URL = re.compile(r"^https?://[^/]+/ngsi-ld/v1/jsonldContexts/([A-Za-z0-9_-]+)$")


@dataclass(slots=True)
class HostedContext:
    local_id: str
    document: dict[str, Any]
    created_at: datetime
    tenant: str | None = None
    hits: int = 0
    last_used: datetime | None = None


class HostedContexts:
    """The hosted contexts, kept in the platform database and in memory for resolution."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_id: dict[str, HostedContext] = {}

    async def load(self) -> None:
        async with translated("@context store"):
            async for doc in self._store.contexts.find({}):
                self._by_id[doc["_id"]] = HostedContext(
                    doc["_id"], doc["document"], doc["createdAt"], doc.get("tenant")
                )

    def lookup(self, url: str, tenant: str | None) -> object | None:
        """The tenant's hosted context at url, for the resolver; None: not hosted here."""
        match = _HOSTED_URL.match(url)
        hosted = None if match is None else self._by_id.get(match.group(1))
        if hosted is None:
            return None
        if hosted.tenant != tenant:
            raise LdContextNotAvailable(f"@context {url} is not hosted here for this tenant")
        hosted.hits += 1
        hosted.last_used = utc_now()
        return hosted.document

    async def add(self, document: object, tenant: str | None) -> HostedContext:
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData("a context to host must be a JSON object with an @context member")
        context = document["@context"]
        if not isinstance(context, dict | list | str):
            raise BadRequestData("@context must be an object, an array or a URL")
        hosted = HostedContext(uuid.uuid4().hex, {"@context": context}, utc_now(), tenant)
        async with translated("@context store"):
            await self._store.contexts.insert_one(
                {
                    "_id": hosted.local_id,
                    "document": hosted.document,
                    "createdAt": hosted.created_at,
                    "tenant": tenant,
                }
            )
        self._by_id[hosted.local_id] = hosted
        return hosted

    def get(self, local_id: str, tenant: str | None) -> HostedContext:
        """The tenant's hosted context; another tenant's is as absent as a missing one."""
        hosted = self._by_id.get(local_id)
        if hosted is None or hosted.tenant != tenant:
            raise ResourceNotFound(f"no @context with id {local_id!r} is hosted here")
        return hosted

    def all(self, tenant: str | None) -> list[HostedContext]:
        return [hosted for hosted in self._by_id.values() if hosted.tenant == tenant]

    async def delete(self, local_id: str, tenant: str | None, resolver: ContextResolver) -> None:
        self.get(local_id, tenant)
        async with translated("@context store"):
            await self._store.contexts.delete_one({"_id": local_id})
        del self._by_id[local_id]
        resolver.forget_hosted(tenant)
