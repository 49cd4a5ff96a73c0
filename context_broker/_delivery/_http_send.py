"""Notifications to HTTP(S) endpoints: one POST each, on kept-alive connections."""

from __future__ import annotations

from context_broker._delivery._http_client import HttpClient, InvalidRequest
from context_broker._delivery._outcome import DELIVERED, Outcome
from context_broker._delivery._queue import Queued

_RETRIED_4XX = frozenset({408, 429})


class HttpSender:
    """POSTs a notification's body with its headers; never follows redirects."""

    def __init__(self, timeout_s: float, connections: int = 256) -> None:
        self._client = HttpClient(timeout_s, connections)

    async def send(self, record: Queued) -> Outcome:
        try:
            status = await self._client.post(record.endpoint, record.headers, record.body)
        except InvalidRequest as error:
            return Outcome("refused", str(error))
        except TimeoutError:
            return Outcome("retry", "no answer in time")
        except OSError as error:
            return Outcome("retry", f"{type(error).__name__}: {error}".rstrip(": "))
        if 200 <= status < 300:
            return DELIVERED
        if 400 <= status < 500 and status not in _RETRIED_4XX:
            return Outcome("refused", f"HTTP {status}")
        return Outcome("retry", f"HTTP {status}")

    async def aclose(self) -> None:
        await self._client.aclose()
