"""A store client tuned for a busy embedded store, writing only once journaled."""

from __future__ import annotations

import re
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from ._errors import StoreError

__all__ = ["connect", "write_concern"]

_URL_SETS_W = re.compile(r"[?&]w=", re.IGNORECASE)


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


def connect(url: str, *, journaled: bool = True) -> AsyncMongoClient[dict[str, Any]]:
    """A client that tolerates a busy embedded store (long queries block its heartbeats,
    which share the socket timeout of connectTimeoutMS); StoreError for a bad URL."""
    try:
        return AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=15000,
            connectTimeoutMS=20000,
            **write_concern(url, journaled=journaled),
        )
    except PyMongoError as error:
        raise StoreError(f"{url!r} is not a store URL: {error}") from error
