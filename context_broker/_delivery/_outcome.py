"""What one attempt to send a notification came to, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["delivered", "retry", "refused"]


@dataclass(slots=True, frozen=True)
class Outcome:
    """`delivered`; `retry` (the endpoint may take it later: timeout, 5xx, 408, 429, no
    connection); `refused` (the endpoint will never take this body: other 4xx)."""

    verdict: Verdict
    why: str = ""


DELIVERED = Outcome("delivered")
