"""A store client tuned for a busy embedded store, writing only once journaled."""

from __future__ import annotations

import re
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from ._errors import StoreError

__all__ = ["API_SERVER_SELECTION_MS", "client_options", "connect", "write_concern"]

_URL_SETS_W = re.compile(r"[?&]w=", re.IGNORECASE)
_URL_SETS_SERVER_SELECTION = re.compile(r"[?&]serverSelectionTimeoutMS=", re.IGNORECASE)
# How long an API request waits for a store the client has lost. A store known to be down
# fails requests at once (`Reachability`), and startup waits for the first contact
# (`Store.first_contact`). Workers wait longer: they retry anyway.
API_SERVER_SELECTION_MS = 500
_WORKER_SERVER_SELECTION_MS = 15_000


def write_concern(url: str, *, journaled: bool = True) -> dict[str, Any]:
    """Client options under which the store acknowledges a write only once it is journaled.

    `w="majority"` unless the URL names its own `w`: on a replica set a write that only the
    primary holds is rolled back when another member takes over; on a single server
    (and the embedded store) majority is that server. `journaled=False` is the opt-in
    CONTESTO_STORE_UNJOURNALED_WRITES_RISK_LOSS: a crash loses recent acknowledged writes.
    """
    options: dict[str, Any] = {"journal": journaled}
    if not _URL_SETS_W.search(url):
        options["w"] = "majority" if journaled else 1
    return options


def client_options(
    url: str, *, journaled: bool = True, server_selection_ms: int | None = None
) -> dict[str, Any]:
    """The options of every store client of Contesto: a long connectTimeoutMS because a
    busy embedded store delays its heartbeats (they share that socket timeout), the wait
    for an unreachable store (`server_selection_ms` if given, else the URL's own
    serverSelectionTimeoutMS, else the workers' 15 s), and the journaled write concern."""
    options: dict[str, Any] = {"tz_aware": True, "connectTimeoutMS": 20_000}
    if server_selection_ms is not None:
        options["serverSelectionTimeoutMS"] = server_selection_ms
    elif not _URL_SETS_SERVER_SELECTION.search(url):
        options["serverSelectionTimeoutMS"] = _WORKER_SERVER_SELECTION_MS
    return {**options, **write_concern(url, journaled=journaled)}


def connect(url: str, *, journaled: bool = True) -> AsyncMongoClient[dict[str, Any]]:
    """A client that tolerates a busy embedded store; StoreError for a bad URL."""
    try:
        return AsyncMongoClient(url, **client_options(url, journaled=journaled))
    except PyMongoError as error:
        raise StoreError(f"{url!r} is not a store URL: {error}") from error
