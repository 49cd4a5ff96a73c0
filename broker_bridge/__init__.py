"""Durable outbox, batching, retries and publishing of fragments into each tenant's broker."""

from __future__ import annotations

from ._backoff import Backoff, sleep_or_stop
from ._copies import CopyLedger, SharedCopy
from ._outbox import Outbox, OutboxRecord
from ._publisher import Publisher, PublishReport, RejectedFragment, coalesce
from ._settings import BridgeSettings, ExternalTarget
from ._sharing import RuleSource, Shares, SharingPolicy
from ._targets import Target, TargetDirectory

__all__ = [
    "Backoff",
    "BridgeSettings",
    "CopyLedger",
    "ExternalTarget",
    "Outbox",
    "OutboxRecord",
    "PublishReport",
    "Publisher",
    "RejectedFragment",
    "RuleSource",
    "SharedCopy",
    "Shares",
    "SharingPolicy",
    "Target",
    "TargetDirectory",
    "coalesce",
    "sleep_or_stop",
]
