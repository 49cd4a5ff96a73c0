"""The project's store errors, and the one translation of the driver's into them."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

from bson.errors import InvalidDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

__all__ = [
    "DuplicateRecord",
    "RecordRefused",
    "StoreError",
    "StoreUnavailable",
    "store_operation",
    "translated",
]

P = ParamSpec("P")
R = TypeVar("R")

# 10334 BSONObjectTooLarge, 17419/17420 a document or batch over the size limit.
_RECORD_FAULT_CODES = frozenset({10334, 17419, 17420})


class StoreError(Exception):
    """The store failed or refused an operation; retrying may help."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (for now)."""


class DuplicateRecord(StoreError):
    """A record with the same unique key exists already."""


class RecordRefused(StoreError):
    """The store refused a record for what it holds (too large, not storable): retrying
    the same record cannot help. `reason` is the store's own message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Raise the driver's errors of the block as the project's (the driver's as cause)."""
    try:
        yield
    except DuplicateKeyError as error:
        raise DuplicateRecord(f"{what}: already exists") from error
    except (PyMongoError, InvalidDocument) as error:
        reason = _record_fault(error)
        if reason is not None:
            raise RecordRefused(f"the store refused a record ({what}): {reason}", reason) from error
        if isinstance(error, ConnectionFailure):
            raise StoreUnavailable(f"the store is not reachable ({what}): {error}") from error
        raise StoreError(f"the store refused {what}: {error}") from error


def store_operation(
    what: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """A method whose driver errors come out translated (see `translated`)."""

    def decorate(
        method: Callable[P, Coroutine[Any, Any, R]],
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            async with translated(what):
                return await method(*args, **kwargs)

        return wrapped

    return decorate


def _record_fault(error: Exception) -> str | None:
    """The store's reason if it refused a record for what it holds, else None."""
    if isinstance(error, DocumentTooLarge | InvalidDocument):
        return str(error)
    if isinstance(error, BulkWriteError):
        errors = error.details.get("writeErrors", [])
        codes = {item.get("code") for item in errors}
        if codes and codes <= _RECORD_FAULT_CODES:
            return str(errors[0].get("errmsg", error))
        return None
    if isinstance(error, OperationFailure) and error.code in _RECORD_FAULT_CODES:
        return str(error)
    return None
