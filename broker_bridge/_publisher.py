"""Moves fragments from the outbox into each tenant's NGSI-LD broker, exactly as confirmed.

One pass reads the oldest outbox records, merges each tenant's fragments per entity
(the latest observation of each attribute wins), and upserts them in batches. A record
leaves the outbox only when the broker confirmed all of it; a broker that is down or
answers 5xx is retried with exponential backoff and jitter, for as long as it takes.

A pass that found less than a full pass of records is followed by a pause of `linger_s`,
so that at a steady rate each pass writes many messages' worth of entities at once (the
store's cost is per entity written, and an entity's messages within a pass are merged);
an idle publisher sleeps until ingest appends to the outbox.

Copies made by sharing rules are recorded in a ledger; every `withdraw_every_s`, between
passes, the copies whose source entity its owner deleted are deleted too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from ._backoff import Backoff, sleep_or_stop
from ._copies import CopyLedger, SharedCopy
from ._outbox import Outbox, OutboxRecord
from ._sharing import SharingPolicy
from ._targets import Target

__all__ = ["PublishReport", "Publisher", "RejectedFragment", "coalesce"]

log = logging.getLogger("broker_bridge.publisher")

_IDS_PER_QUERY = 100


@dataclass(slots=True, frozen=True)
class RejectedFragment:
    """A fragment the broker refused for good (a 4xx for that entity), or that a sharing
    rule could not place (`kind` "routing": its location is outside every comune)."""

    tenant: str
    fragment: dict[str, Any]
    status: int
    reason: str
    kind: Literal["broker", "routing"] = "broker"


OnRejected = Callable[[list[RejectedFragment]], Awaitable[None]]
Audit = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""(tenant, action, detail): writes one entry to the tenant's audit log."""


@dataclass(slots=True)
class PublishReport:
    """What one pass did: records removed, entities written, fragments refused."""

    records: int = 0
    entities: int = 0
    rejected: int = 0
    retry: bool = False


class _Retry(Exception):
    """The target could not take the batch now (down, 5xx, timeout): try again later."""


def coalesce(fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One fragment per entity: each attribute from the fragment that observed it last.

    Equal or missing `observedAt` keep arrival order, so redelivering a message leaves
    the same state as delivering it once.
    """
    merged: dict[str, dict[str, Any]] = {}
    for fragment in fragments:
        current = merged.get(fragment["id"])
        if current is None:
            merged[fragment["id"]] = dict(fragment)
            continue
        for name, attribute in fragment.items():
            if name in ("id", "type"):
                continue
            older = current.get(name)
            if older is None or _observed(attribute) >= _observed(older):
                current[name] = attribute
    return list(merged.values())


def _observed(attribute: Any) -> str:
    if isinstance(attribute, dict):
        stamp = attribute.get("observedAt")
        if isinstance(stamp, str):
            return stamp
    return ""


class Publisher:
    """Drains the outbox into the targets; run `run()` as a task, or `publish_once()`."""

    def __init__(
        self,
        outbox: Outbox,
        client: httpx.AsyncClient,
        target_of: Callable[[str], Target],
        on_rejected: OnRejected,
        *,
        sharing: SharingPolicy | None = None,
        ledger: CopyLedger | None = None,
        audit: Audit | None = None,
        withdraw_every_s: float = 30.0,
        records_per_pass: int = 200,
        entities_per_request: int = 200,
        linger_s: float = 0.0,
        idle_poll_s: float = 0.5,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 10.0,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._target_of = target_of
        self._on_rejected = on_rejected
        self._sharing = sharing
        self._ledger = ledger
        self._audit = audit
        self._withdraw_every_s = withdraw_every_s
        self._records_per_pass = records_per_pass
        self._chunk = entities_per_request
        self._linger_s = linger_s
        self._idle_poll_s = idle_poll_s
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set: lingering after a partial pass, waiting for an
        append when idle (or `idle_poll_s`, for other processes' appends), backing off on
        failures."""
        backoff = Backoff(self._backoff_base_s, self._backoff_cap_s)
        withdrawn_at = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - withdrawn_at >= self._withdraw_every_s:
                withdrawn_at = time.monotonic()
                try:
                    await self.withdraw_deleted_copies()
                except Exception:
                    log.exception("withdrawing deleted copies failed; retrying later")
            try:
                report = await self.publish_once()
            except Exception:
                log.exception("outbox pass failed; retrying")
                report = PublishReport(retry=True)
            if report.retry:
                await sleep_or_stop(stop, backoff.next_delay())
                continue
            backoff.reset()
            if report.records == 0:
                await self._wait_for_append(stop)
            elif report.records < self._records_per_pass and self._linger_s > 0:
                await sleep_or_stop(stop, self._linger_s)

    async def _wait_for_append(self, stop: asyncio.Event) -> None:
        appended = asyncio.ensure_future(self._outbox.wait_for_append(self._idle_poll_s))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([appended, stopped], return_when=asyncio.FIRST_COMPLETED)
        appended.cancel()
        stopped.cancel()

    async def publish_once(self) -> PublishReport:
        """One pass over the oldest records; returns what it did."""
        records = await self._outbox.oldest(self._records_per_pass)
        report = PublishReport()
        if not records:
            return report
        by_tenant: dict[str, list[OutboxRecord]] = {}
        for record in records:
            by_tenant.setdefault(record.tenant, []).append(record)
        outcomes = await asyncio.gather(
            *(self._deliver(tenant, group) for tenant, group in by_tenant.items())
        )
        delivered: list[OutboxRecord] = []
        rejected: list[RejectedFragment] = []
        copies: dict[str, list[dict[str, Any]]] = {}
        for (tenant, group), outcome in zip(by_tenant.items(), outcomes, strict=True):
            if outcome is None:
                report.retry = True
                continue
            confirmed, refused = outcome
            delivered.extend(group)
            rejected.extend(refused)
            report.entities += len(confirmed)
            if self._sharing is not None and confirmed:
                rejected.extend(await self._share(tenant, confirmed, copies))
        if rejected:
            await self._on_rejected(rejected)
        # Copies are queued before their source leaves the outbox: a crash in between
        # makes them again from the same records, which is harmless.
        await self._outbox.append(copies)
        await self._outbox.remove(delivered)
        report.records = len(delivered)
        report.rejected = len(rejected)
        return report

    async def _share(
        self,
        owner: str,
        confirmed: list[dict[str, Any]],
        into: dict[str, list[dict[str, Any]]],
    ) -> list[RejectedFragment]:
        assert self._sharing is not None
        shares = await self._sharing.shares(owner, confirmed)
        for target, made in shares.copies.items():
            into.setdefault(target, []).extend(made)
            if self._ledger is not None:
                await self._ledger.record(owner, target, made)
            if self._audit is not None:
                ids = sorted({copy["id"] for copy in made})
                await self._audit(owner, "share.sent", {"to": target, "entities": ids[:100]})
                await self._audit(target, "share.received", {"from": owner, "entities": ids[:100]})
        return [RejectedFragment(owner, f, 0, why, "routing") for f, why in shares.unplaced]

    async def withdraw_deleted_copies(self) -> int:
        """Delete the copies whose source entity its owner deleted; return how many went.

        An owner or a target whose broker cannot answer now keeps its copies until the
        next round."""
        if self._ledger is None:
            return 0
        withdrawn = 0
        for owner, copies in (await self._ledger.by_owner()).items():
            try:
                existing = await self._existing(owner, copies)
                if existing is None:
                    continue
                gone = [copy for copy in copies if copy.entity_id not in existing]
                deleted = await self._delete_copies(gone)
            except _Retry as exc:
                log.warning("copies of %s: %s; will retry", owner, exc)
                continue
            await self._ledger.forget(deleted)
            await self._audit_withdrawn(owner, deleted)
            withdrawn += len(deleted)
        return withdrawn

    async def _existing(self, owner: str, copies: list[SharedCopy]) -> set[str] | None:
        """Which of the shared entities the owner still has; None if its broker refused
        to say (logged), and the copies stay."""
        target = self._target_of(owner)
        ids = sorted({copy.entity_id for copy in copies})
        types = ",".join(sorted({copy.entity_type for copy in copies}))
        found: set[str] = set()
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            params = {"id": ",".join(chunk), "type": types, "limit": str(len(chunk))}
            response = await self._send("GET", target, target.entities_url, params=params)
            if response.status_code == 404 and _problem_type(response) == "NonexistentTenant":
                return set()  # the owner's tenant is gone, and its entities with it
            if response.status_code != 200:
                log.error(
                    "copies of %s: its broker answered %d to a query by id: %s",
                    owner,
                    response.status_code,
                    _problem_detail(response),
                )
                return None
            found.update(entity["id"] for entity in orjson.loads(response.content))
        return found

    async def _delete_copies(self, gone: list[SharedCopy]) -> list[SharedCopy]:
        """Delete the copies from the tenants holding them; return those now gone."""
        by_target: dict[str, list[SharedCopy]] = {}
        for copy in gone:
            by_target.setdefault(copy.target, []).append(copy)
        deleted: list[SharedCopy] = []
        for tenant, copies in by_target.items():
            target = self._target_of(tenant)
            ids = [copy.entity_id for copy in copies]
            response = await self._send("POST", target, target.delete_url, body=ids)
            kept = _not_deleted(response)
            deleted.extend(copy for copy in copies if copy.entity_id not in kept)
        return deleted

    async def _send(
        self,
        method: str,
        target: Target,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: object = None,
    ) -> httpx.Response:
        """The target's answer; _Retry when it is unreachable, failing or busy."""
        try:
            response = await self._client.request(
                method,
                url,
                params=params,
                content=None if body is None else orjson.dumps(body),
                headers=target.headers,
            )
        except httpx.HTTPError as exc:
            raise _Retry(f"{target.base_url} unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise _Retry(f"{target.base_url} answered {response.status_code}")
        return response

    async def _audit_withdrawn(self, owner: str, deleted: list[SharedCopy]) -> None:
        if self._audit is None or not deleted:
            return
        by_target: dict[str, list[str]] = {}
        for copy in deleted:
            by_target.setdefault(copy.target, []).append(copy.entity_id)
        for target, ids in by_target.items():
            await self._audit(owner, "share.withdrawn", {"from": target, "entities": ids[:100]})
            await self._audit(target, "share.withdrawn", {"by": owner, "entities": ids[:100]})

    async def _deliver(
        self, tenant: str, records: list[OutboxRecord]
    ) -> tuple[list[dict[str, Any]], list[RejectedFragment]] | None:
        """Write one tenant's records; None when the target must be retried later."""
        fragments = coalesce([f for record in records for f in record.fragments])
        target = self._target_of(tenant)
        refused: list[RejectedFragment] = []
        try:
            for start in range(0, len(fragments), self._chunk):
                chunk = fragments[start : start + self._chunk]
                refused.extend(await self._upsert(tenant, target, chunk))
        except _Retry as exc:
            log.warning("tenant %s: %s; will retry", tenant, exc)
            return None
        refused_ids = {r.fragment["id"] for r in refused}
        return [f for f in fragments if f["id"] not in refused_ids], refused

    async def _upsert(
        self, tenant: str, target: Target, chunk: list[dict[str, Any]]
    ) -> list[RejectedFragment]:
        response = await self._send(
            "POST", target, target.upsert_url, params={"options": "update"}, body=chunk
        )
        status = response.status_code
        if status in (201, 204):
            return []
        if status == 207:
            return self._refused_in(tenant, chunk, response)
        detail = _problem_detail(response)
        log.error("tenant %s: the broker refused a whole batch (%d): %s", tenant, status, detail)
        return [RejectedFragment(tenant, fragment, status, detail) for fragment in chunk]

    def _refused_in(
        self, tenant: str, chunk: list[dict[str, Any]], response: httpx.Response
    ) -> list[RejectedFragment]:
        by_id = {fragment["id"]: fragment for fragment in chunk}
        refused: list[RejectedFragment] = []
        try:
            errors = orjson.loads(response.content).get("errors", [])
        except (orjson.JSONDecodeError, AttributeError):
            raise _Retry("the broker answered 207 without a BatchOperationResult") from None
        for error in errors:
            problem = error.get("error") or {}
            status = int(problem.get("status") or 400)
            if status >= 500:
                raise _Retry(f"the broker failed on {error.get('entityId')}: {status}")
            fragment = by_id.get(error.get("entityId"))
            if fragment is not None:
                reason = str(problem.get("detail") or problem.get("title") or problem.get("type"))
                refused.append(RejectedFragment(tenant, fragment, status, reason))
        return refused


def _not_deleted(response: httpx.Response) -> set[str]:
    """The ids a batch delete left in place: every id it refused for another reason than
    not finding it (204: none; a tenant that does not exist holds none either)."""
    if response.status_code in (204, 404):
        return set()
    if response.status_code != 207:
        detail = _problem_detail(response)
        raise _Retry(f"a batch delete answered {response.status_code}: {detail}")
    errors = orjson.loads(response.content).get("errors", [])
    return {
        str(error.get("entityId"))
        for error in errors
        if (error.get("error") or {}).get("status") != 404
    }


def _problem_type(response: httpx.Response) -> str:
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    kind = problem.get("type", "") if isinstance(problem, dict) else ""
    return str(kind).rsplit("/", 1)[-1]


def _problem_detail(response: httpx.Response) -> str:
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or problem)
    return str(problem)[:200]
