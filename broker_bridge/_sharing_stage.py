"""Sharing as a stage of publishing: the copies an owner's confirmed write makes, and the
withdrawal of copies whose source the owner deleted.

The copies are returned to the publisher, which queues them in the outbox like any
fragment; each is recorded in the ledger and the audit log first. Every
`withdraw_every_s`, between the publisher's passes, the copies whose source entity is gone
are deleted from the tenants holding them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ngsild_client import NgsiLdClient, Refused, RetryLater

from ._copies import CopyLedger, SharedCopy
from ._rejected import RejectedFragment
from ._sharing import SharingPolicy

__all__ = ["Audit", "SharingStage"]

log = logging.getLogger("broker_bridge.publisher")

Audit = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""(tenant, action, detail): writes one entry to the tenant's audit log."""


class SharingStage:
    """Copies by the owners' rules, their ledger and audit entries, and their withdrawal."""

    def __init__(
        self,
        policy: SharingPolicy,
        clients: Callable[[str], NgsiLdClient],
        *,
        ledger: CopyLedger | None = None,
        audit: Audit | None = None,
        withdraw_every_s: float = 30.0,
    ) -> None:
        self._policy = policy
        self._clients = clients
        self._ledger = ledger
        self._audit = audit
        self._withdraw_every_s = withdraw_every_s
        self._withdrawn_at: float | None = None

    async def copies(
        self, owner: str, confirmed: list[dict[str, Any]]
    ) -> tuple[dict[str, list[dict[str, Any]]], list[RejectedFragment]]:
        """The copies `owner`'s rules make of its confirmed fragments, by target tenant, and
        the fragments a comune-bound rule could not place."""
        shares = await self._policy.shares(owner, confirmed)
        for target, made in shares.copies.items():
            if self._ledger is not None:
                await self._ledger.record(owner, target, made)
            if self._audit is not None:
                ids = sorted({copy["id"] for copy in made})
                await self._audit(owner, "share.sent", {"to": target, "entities": ids[:100]})
                await self._audit(target, "share.received", {"from": owner, "entities": ids[:100]})
        unplaced = [RejectedFragment(owner, f, 0, why, "routing") for f, why in shares.unplaced]
        return shares.copies, unplaced

    async def between_passes(self) -> None:
        """Withdraw deleted copies if `withdraw_every_s` went by since the last round (the
        first round comes one period after the first call); failures are logged."""
        now = time.monotonic()
        if self._withdrawn_at is None:
            self._withdrawn_at = now
        if now - self._withdrawn_at < self._withdraw_every_s:
            return
        self._withdrawn_at = now
        try:
            await self.withdraw_deleted_copies()
        except Exception:
            log.exception("withdrawing deleted copies failed; retrying later")

    async def withdraw_deleted_copies(self) -> int:
        """Delete the copies whose source entity its owner deleted; return how many went.

        An owner or a target whose broker cannot answer now keeps its copies until the
        next round."""
        if self._ledger is None:
            return 0
        withdrawn = 0
        for owner, copies in (await self._ledger.by_owner()).items():
            try:
                existing = await self._clients(owner).ids_present(
                    (copy.entity_id for copy in copies), (copy.entity_type for copy in copies)
                )
                gone = [copy for copy in copies if copy.entity_id not in existing]
                deleted = await self._delete_copies(gone)
            except Refused as exc:
                log.error(
                    "copies of %s: its broker answered %d to a query by id: %s",
                    owner,
                    exc.status,
                    exc.detail,
                )
                continue
            except RetryLater as exc:
                log.warning("copies of %s: %s; will retry", owner, exc)
                continue
            await self._ledger.forget(deleted)
            await self._audit_withdrawn(owner, deleted)
            withdrawn += len(deleted)
        return withdrawn

    async def _delete_copies(self, gone: list[SharedCopy]) -> list[SharedCopy]:
        """Delete the copies from the tenants holding them; return those now gone."""
        by_target: dict[str, list[SharedCopy]] = {}
        for copy in gone:
            by_target.setdefault(copy.target, []).append(copy)
        deleted: list[SharedCopy] = []
        for tenant, copies in by_target.items():
            kept = await self._clients(tenant).batch_delete([copy.entity_id for copy in copies])
            deleted.extend(copy for copy in copies if copy.entity_id not in kept)
        return deleted

    async def _audit_withdrawn(self, owner: str, deleted: list[SharedCopy]) -> None:
        if self._audit is None or not deleted:
            return
        by_target: dict[str, list[str]] = {}
        for copy in deleted:
            by_target.setdefault(copy.target, []).append(copy.entity_id)
        for target, ids in by_target.items():
            await self._audit(owner, "share.withdrawn", {"from": target, "entities": ids[:100]})
            await self._audit(target, "share.withdrawn", {"by": owner, "entities": ids[:100]})
