"""The client's one transport: httpx, one connection pool per process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import orjson

from ._errors import BrokerUnreachable

__all__ = ["Answer", "HttpAdapter"]


@dataclass(slots=True, frozen=True)
class Answer:
    """One HTTP answer: status, headers (lower-case names), body, and the query string sent."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    query: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return orjson.loads(self.content)

    def problem_type(self) -> str:
        """The short name of a ProblemDetails `type` (e.g. `NonexistentTenant`), or ""."""
        problem = self._problem()
        kind = problem.get("type", "") if isinstance(problem, dict) else ""
        return str(kind).rsplit("/", 1)[-1]

    def problem_detail(self) -> str:
        """A ProblemDetails' `detail` (else `title`), or the start of the body."""
        problem = self._problem()
        if problem is None:
            return self.text[:200]
        if isinstance(problem, dict):
            return str(problem.get("detail") or problem.get("title") or problem)
        return str(problem)[:200]

    def _problem(self) -> Any:
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            return None


class HttpAdapter:
    """Sends requests over one pooled httpx client; `async with` owns its connections."""

    def __init__(self, *, timeout_s: float = 30.0, max_connections: int = 16) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = httpx.AsyncClient(timeout=timeout_s, limits=limits)

    async def __aenter__(self) -> HttpAdapter:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        """The answer to one request; BrokerUnreachable when none came back."""
        try:
            response = await self._http.request(
                method,
                url,
                params=dict(params) if params else None,
                content=content,
                headers=dict(headers),
            )
        except httpx.HTTPError as exc:
            raise BrokerUnreachable(f"{url} unreachable ({type(exc).__name__}: {exc})") from exc
        return Answer(
            response.status_code,
            {key.lower(): value for key, value in response.headers.items()},
            response.content,
            response.request.url.query.decode(),
        )
