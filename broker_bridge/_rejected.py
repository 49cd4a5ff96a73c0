"""Fragments that will never reach a broker, handed to the composition's callback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["OnRejected", "RejectedFragment"]


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
