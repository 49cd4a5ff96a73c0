"""Durable outbox, batching, retries and publishing of fragments into each tenant's broker."""

from __future__ import annotations

from ._backoff import Backoff, sleep_or_stop
from ._copies import CopyLedger, SharedCopy
from ._outbox import Outbox, OutboxRecord, OutboxStore
from ._publisher import Publisher, PublishReport, coalesce
from ._rejected import OnRejected, RejectedFragment
from ._sharing import RuleSource, Shares, SharingPolicy
from ._sharing_stage import Audit, SharingStage
from ._targets import ExternalTarget, TargetDirectory, TenantClients

__all__ = [
    "Audit",
    "Backoff",
    "CopyLedger",
    "ExternalTarget",
    "OnRejected",
    "Outbox",
    "OutboxRecord",
    "OutboxStore",
    "PublishReport",
    "Publisher",
    "RejectedFragment",
    "RuleSource",
    "SharedCopy",
    "Shares",
    "SharingPolicy",
    "SharingStage",
    "TargetDirectory",
    "TenantClients",
    "coalesce",
    "sleep_or_stop",
]
