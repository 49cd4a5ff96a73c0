"""The change sink that records history: every acknowledged write's changed attribute
instances go into the tenant's `temporal_instances` before the write is acknowledged.

Concurrent writes of a tenant share one insert (`_delivery/_group_commit.py`, as the
notification queue's records do), so N writes in flight cost about one journaled commit of
the history, not N."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from context_broker._delivery._group_commit import GroupCommit
from context_broker._subscriptions._changes import EntityChange
from context_broker._temporal._records import changed_instances, summaries_of
from context_broker._temporal._store import TemporalStore

Document = dict[str, Any]


_KNOWN_SUMMARIES = 100_000
"""Attributes this process knows to be summarised already; others are summarised again
(a duplicate the store refuses), never lost."""


class _TenantHistory:
    """One tenant's history as the group commit's destination."""

    def __init__(self, store: TemporalStore, tenant: str | None, known: _Known) -> None:
        self.store = store
        self.tenant = tenant
        self.known = known

    async def add(self, records: Sequence[Document]) -> None:
        summaries = [
            summary
            for summary in summaries_of(records)
            if (self.tenant, summary["_id"]) not in self.known
        ]
        await self.store.add(self.tenant, records, summaries)
        self.known.add_all((self.tenant, summary["_id"]) for summary in summaries)


class _Known:
    """A bounded set, the oldest forgotten first."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._keys: OrderedDict[tuple[str | None, str], None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add_all(self, keys: Iterable[tuple[str | None, str]]) -> None:
        for key in keys:
            self._keys[key] = None
        while len(self._keys) > self.bound:
            self._keys.popitem(last=False)


class TemporalRecorder:
    """Records every tenant's changes (CONTESTO_TEMPORAL=on). It needs only the attributes
    each write stamped (`changed_instances`), so it never makes a write read the entity."""

    def __init__(self, store: TemporalStore) -> None:
        self.store = store
        self._commits: dict[str | None, GroupCommit] = {}
        self._known = _Known(_KNOWN_SUMMARIES)

    async def listens(self, tenant: str | None) -> bool:
        return True

    async def needs_documents(self, tenant: str | None) -> bool:
        return False

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        by_tenant: dict[str | None, list[Document]] = {}
        for change in changes:
            records = changed_instances(change)
            if records:
                by_tenant.setdefault(change.tenant, []).extend(records)
        for tenant, records in by_tenant.items():
            commits = self._commits.get(tenant)
            if commits is None:
                history = _TenantHistory(self.store, tenant, self._known)
                commits = self._commits[tenant] = GroupCommit(history)
            await commits.add(records)
