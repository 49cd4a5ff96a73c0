"""Store clients take the wait for an unreachable store from the URL when it names one."""

from __future__ import annotations

import pytest

from store_edge import API_SERVER_SELECTION_MS, client_options, connect


async def test_a_url_that_names_its_server_selection_timeout_keeps_it() -> None:
    client = connect("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    try:
        assert client.options.server_selection_timeout == pytest.approx(0.3)
    finally:
        await client.close()


async def test_a_url_without_one_gets_the_workers_wait() -> None:
    client = connect("mongodb://127.0.0.1:9/")
    try:
        assert client.options.server_selection_timeout == pytest.approx(15.0)
    finally:
        await client.close()


def test_the_apis_own_short_wait_comes_before_the_urls() -> None:
    """The API answers 503 within a second while the store is away, whatever the URL says."""
    options = client_options(
        "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=30000",
        server_selection_ms=API_SERVER_SELECTION_MS,
    )
    assert options["serverSelectionTimeoutMS"] == API_SERVER_SELECTION_MS
