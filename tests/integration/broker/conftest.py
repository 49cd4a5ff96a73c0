"""Fixtures of the broker's integration tests: a fresh tenant per test and a client on it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from _servers import serving

from ._receiver import Receiver


@pytest.fixture
def tenant() -> str:
    """A tenant name no other test uses: its types, attributes and counts are the test's own."""
    return f"t{secrets.token_hex(6)}"


@pytest.fixture
async def api(broker_url: str, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the broker's NGSI-LD API that sends NGSILD-Tenant: `tenant`."""
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": tenant}, timeout=30.0
    ) as http:
        yield http


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP endpoint that records the notifications it receives."""
    found = Receiver()
    with serving(found.handler()) as url:
        found.url = url
        yield found
