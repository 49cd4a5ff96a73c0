"""The NGSI-LD operations the project sends to a broker, and what their answers mean.

Every operation classifies its answer the same way: no answer, a 5xx, 408 or 429 is
`RetryLater`; an error for the whole request is `Refused`; per-entity errors of a batch
come back as values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ._endpoint import Endpoint
from ._errors import Refused, RetryLater
from ._http import Answer, HttpAdapter

__all__ = ["NgsiLdClient", "Refusal"]

_IDS_PER_QUERY = 100


@dataclass(slots=True, frozen=True)
class Refusal:
    """An entity of a batch the broker refused for good: its status and why."""

    entity: dict[str, Any]
    status: int
    reason: str


class NgsiLdClient:
    """The NGSI-LD API of one endpoint (a broker and a tenant there)."""

    def __init__(self, http: HttpAdapter, endpoint: Endpoint) -> None:
        self._http = http
        self.endpoint = endpoint

    async def batch_upsert(
        self, entities: list[dict[str, Any]], *, options: str = "update"
    ) -> list[Refusal]:
        """Upsert a batch (clause 5.6.8); the entities refused, each with its reason.

        Refused when the broker refused the whole batch."""
        answer = await self._send(
            "POST", "entityOperations/upsert", params={"options": options}, body=entities
        )
        if answer.status in (201, 204):
            return []
        if answer.status == 207:
            return _refused_in(entities, answer)
        raise Refused(answer.status, answer.problem_detail(), answer.text)

    async def batch_delete(self, ids: list[str]) -> set[str]:
        """Delete entities by id (clause 5.6.10); the ids left in place for another reason
        than not being found (a tenant that does not exist holds none)."""
        return kept_after_delete(await self._send("POST", "entityOperations/delete", body=ids))

    async def ids_present(self, ids: Iterable[str], types: Iterable[str]) -> set[str]:
        """Which of `ids` (of `types`) the tenant holds; none if the tenant does not exist."""
        wanted = sorted(set(ids))
        joined_types = ",".join(sorted(set(types)))
        found: set[str] = set()
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            chunk = wanted[start : start + _IDS_PER_QUERY]
            params = {"id": ",".join(chunk), "type": joined_types, "limit": str(len(chunk))}
            answer = await self._send("GET", "entities", params=params)
            if answer.status == 404 and answer.problem_type() == "NonexistentTenant":
                return set()
            if answer.status != 200:
                raise Refused(answer.status, answer.problem_detail(), answer.text)
            found.update(entity["id"] for entity in answer.json())
        return found

    async def query_entities(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """One page of a query (clause 5.7.2); none when the tenant does not exist (404)."""
        answer = await self._send("GET", "entities", params=params)
        if answer.status == 404:
            return []
        if answer.status != 200:
            raise Refused(answer.status, answer.problem_detail(), answer.text)
        found: list[dict[str, Any]] = answer.json()
        return found

    async def delete_attribute(self, entity_id: str, name: str) -> None:
        """Delete an attribute (clause 5.6.5); one already gone counts as deleted."""
        path = f"entities/{quote(entity_id, safe=':')}/attrs/{quote(name, safe='')}"
        answer = await self._send("DELETE", path)
        if answer.status not in (204, 404):
            raise Refused(answer.status, answer.problem_detail(), answer.text)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        """Any request, answered as it comes (no classification): the endpoint's tenant
        and token, then `headers`."""
        return await self._http.send(
            method,
            self.endpoint.url(path),
            headers={**self.endpoint.scope_headers, **(headers or {})},
            params=params,
            content=content,
        )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: object = None,
    ) -> Answer:
        """The broker's answer; RetryLater when it is unreachable, failing or busy."""
        answer = await self._http.send(
            method,
            self.endpoint.url(path),
            headers=self.endpoint.headers,
            params=params,
            content=None if body is None else orjson.dumps(body),
        )
        if answer.status >= 500 or answer.status in (408, 429):
            raise RetryLater(f"{self.endpoint.base_url} answered {answer.status}")
        return answer


def _refused_in(entities: list[dict[str, Any]], answer: Answer) -> list[Refusal]:
    """The per-entity errors of a 207 BatchOperationResult; RetryLater if one is a 5xx."""
    by_id = {entity["id"]: entity for entity in entities}
    try:
        errors = answer.json().get("errors", [])
    except (orjson.JSONDecodeError, AttributeError):
        raise RetryLater("the broker answered 207 without a BatchOperationResult") from None
    refused: list[Refusal] = []
    for error in errors:
        problem = error.get("error") or {}
        status = int(problem.get("status") or 400)
        if status >= 500:
            raise RetryLater(f"the broker failed on {error.get('entityId')}: {status}")
        entity = by_id.get(error.get("entityId"))
        if entity is not None:
            reason = str(problem.get("detail") or problem.get("title") or problem.get("type"))
            refused.append(Refusal(entity, status, reason))
    return refused


def kept_after_delete(answer: Answer) -> set[str]:
    """The ids a batch delete left in place: every id it refused for another reason than
    not finding it (204: none; a tenant that does not exist holds none either).

    RetryLater when the whole batch was refused: the next round tries again."""
    if answer.status in (204, 404):
        return set()
    if answer.status != 207:
        raise RetryLater(f"a batch delete answered {answer.status}: {answer.problem_detail()}")
    errors = answer.json().get("errors", [])
    return {
        str(error.get("entityId"))
        for error in errors
        if (error.get("error") or {}).get("status") != 404
    }
