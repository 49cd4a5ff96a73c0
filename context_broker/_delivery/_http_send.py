"""Notifications to HTTP(S) endpoints: one POST each, through one shared client."""

from __future__ import annotations

import httpx

from context_broker._delivery._outcome import DELIVERED, Outcome
from context_broker._delivery._queue import Queued

_RETRIED_4XX = frozenset({408, 429})


class HttpSender:
    """POSTs a notification's body with its headers; never follows redirects."""

    def __init__(self, timeout_s: float, connections: int = 256) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=64),
            trust_env=False,
        )

    async def send(self, record: Queued) -> Outcome:
        try:
            answer = await self._client.post(
                record.endpoint, content=record.body, headers=record.headers
            )
        except httpx.InvalidURL as error:
            return Outcome("refused", f"invalid endpoint: {error}")
        except httpx.TimeoutException:
            return Outcome("retry", "no answer in time")
        except httpx.HTTPError as error:
            return Outcome("retry", f"{type(error).__name__}: {error}".rstrip(": "))
        status = answer.status_code
        if 200 <= status < 300:
            return DELIVERED
        if 400 <= status < 500 and status not in _RETRIED_4XX:
            return Outcome("refused", f"HTTP {status}")
        return Outcome("retry", f"HTTP {status}")

    async def aclose(self) -> None:
        await self._client.aclose()
