"""The pipeline side's store edge: connect with the tuned timeouts and the journaled write
concern, translate driver errors into the project's own, create indexes."""

from __future__ import annotations

from ._connect import API_SERVER_SELECTION_MS, client_options, connect, write_concern
from ._errors import (
    DuplicateRecord,
    RecordRefused,
    StoreError,
    StoreUnavailable,
    store_operation,
    translated,
)
from ._indexes import Index, ensure_indexes
from ._reachability import HEARTBEAT_MS, Reachability

__all__ = [
    "API_SERVER_SELECTION_MS",
    "HEARTBEAT_MS",
    "DuplicateRecord",
    "Index",
    "Reachability",
    "RecordRefused",
    "StoreError",
    "StoreUnavailable",
    "client_options",
    "connect",
    "ensure_indexes",
    "store_operation",
    "translated",
    "write_concern",
]
