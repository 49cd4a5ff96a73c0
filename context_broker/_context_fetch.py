"""Fetching remote JSON-LD @context documents over HTTP(S): the broker's only such client."""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from context_broker._errors import BadRequestData, LdContextNotAvailable

__all__ = ["HttpContextFetcher"]

_ACCEPT = "application/ld+json, application/json;q=0.9"


class HttpContextFetcher:
    """`await fetcher(url)` -> the parsed @context document; bounded in time and size."""

    def __init__(self, timeout_s: float, max_bytes: int) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=5,
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": _ACCEPT},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpContextFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __call__(self, url: str) -> object:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequestData(f"the @context URL must be http(s): {url!r}")
        try:
            async with asyncio.timeout(self._timeout_s):
                body = await self._get(url)
        except (TimeoutError, httpx.TimeoutException):
            raise LdContextNotAvailable(
                f"@context {url}: no complete answer within {self._timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            cause = str(exc) or type(exc).__name__
            raise LdContextNotAvailable(f"@context {url} could not be fetched: {cause}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise LdContextNotAvailable(f"@context {url}: the answer is not valid JSON") from None
        if not isinstance(document, dict) or "@context" not in document:
            raise LdContextNotAvailable(
                f"@context {url}: the answer is not a JSON object with an @context member"
            )
        return document

    async def _get(self, url: str) -> bytes:
        async with self._client.stream("GET", url) as response:
            if not response.is_success:
                raise LdContextNotAvailable(
                    f"@context {url}: the server answered HTTP {response.status_code}"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise self._too_large(url)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise self._too_large(url)
                chunks.append(chunk)
            return b"".join(chunks)

    def _too_large(self, url: str) -> LdContextNotAvailable:
        return LdContextNotAvailable(
            f"@context {url}: the document is larger than {self._max_bytes} bytes"
        )
