"""Patterns a client sends (idPattern, q's `~=` and `!~=`) run in linear time in the broker,
never in the shared store: a pattern built to backtrack neither stalls other tenants nor
itself, and a pattern the linear engine refuses is a 400."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from _servers import ThreadedServer

from context_broker import BrokerSettings, create_app
from context_broker._query._store_traits import QUERY_TRAITS
from context_broker._store import Store

pytestmark = pytest.mark.integration

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
# With a backtracking engine, each further `a` doubles the time: 27 took 10 s in the store.
RUN = "a" * 40
EVIL_ID = f"urn:x:R:{RUN}!"
GOOD_ID = f"urn:x:R:{RUN}"
BOUND_S = 5.0


def client(broker_url: str, tenant: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1",
        headers={"NGSILD-Tenant": tenant},
        timeout=httpx.Timeout(BOUND_S),
    )


@pytest.fixture
async def attacked(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A tenant holding ids and names that make `(a+)+$` backtrack, and one that matches."""
    async with client(broker_url, f"t{secrets.token_hex(6)}") as http:
        entities = [
            {"id": entity_id, "type": "R", "name": {"type": "Property", "value": name}}
            for entity_id, name in (
                (EVIL_ID, RUN + "!"),
                (f"urn:x:R:{'a' * 30}!", "a" * 30 + "!"),
                (GOOD_ID, RUN),
                ("urn:x:R:b", ["b", RUN]),
            )
        ]
        created = await http.post("/entityOperations/create", json=entities)
        assert created.status_code == 201, created.text
        yield http


@pytest.fixture
async def bystander(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another tenant with one ordinary entity."""
    async with client(broker_url, f"t{secrets.token_hex(6)}") as http:
        created = await http.post(
            "/entities",
            json={"id": "urn:x:S:1", "type": "S", "n": {"type": "Property", "value": 1}},
        )
        assert created.status_code == 201, created.text
        yield http


async def timed_get(http: httpx.AsyncClient, params: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    try:
        answer = await http.get("/entities", params=params)
    except httpx.TimeoutException:
        pytest.fail(f"{params} took more than {BOUND_S} s")
    return time.perf_counter() - started, answer


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "R", "idPattern": "urn:x:R:(a+)+$"}, [GOOD_ID]),
        ({"idPattern": "urn:x:R:(a+)+$"}, [GOOD_ID]),
        ({"type": "R", "q": "name~=(a+)+$"}, [GOOD_ID, "urn:x:R:b"]),
        ({"type": "R", "q": "name!~=(a+)+$"}, [f"urn:x:R:{'a' * 30}!", EVIL_ID]),
        ({"type": "R", "q": "name~=(a+)+$|name==1"}, [GOOD_ID, "urn:x:R:b"]),
    ],
)
async def test_a_backtracking_pattern_answers_promptly_and_right(
    attacked: httpx.AsyncClient,
    bystander: httpx.AsyncClient,
    params: dict[str, str],
    expected: list[str],
) -> None:
    attack = asyncio.create_task(timed_get(attacked, params))
    await asyncio.sleep(0.05)
    ordinary_s, ordinary = await timed_get(bystander, {"type": "S"})
    attack_s, answer = await attack
    assert answer.status_code == 200, answer.text
    assert [item["id"] for item in answer.json()] == expected
    assert attack_s < BOUND_S
    assert ordinary.status_code == 200
    assert [item["id"] for item in ordinary.json()] == ["urn:x:S:1"]
    assert ordinary_s < 2.0


async def test_paging_and_count_stay_exact(attacked: httpx.AsyncClient) -> None:
    params = {"type": "R", "idPattern": "^urn:x:R:", "q": "name~=a", "count": "true"}
    first = await attacked.get("/entities", params={**params, "limit": "2"})
    assert first.status_code == 200, first.text
    assert first.headers["NGSILD-Results-Count"] == "4"
    assert 'rel="next"' in first.headers.get("Link", "")
    second = await attacked.get("/entities", params={**params, "limit": "2", "offset": "2"})
    pages = [item["id"] for item in first.json() + second.json()]
    assert pages == sorted([EVIL_ID, GOOD_ID, f"urn:x:R:{'a' * 30}!", "urn:x:R:b"])
    assert 'rel="next"' not in second.headers.get("Link", "")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"idPattern": r"(a)\1"}, "idPattern"),
        ({"idPattern": "(?=a)b"}, "idPattern"),
        ({"idPattern": "[a"}, "idPattern"),
        ({"type": "R", "q": r"name~=(a)\1"}, "q: invalid regular expression"),
        ({"type": "R", "q": "name~=(?<=a)b"}, "q: invalid regular expression"),
        ({"idPattern": "a" * 5000}, "1024"),
    ],
)
async def test_patterns_the_linear_engine_refuses_are_bad_request_data(
    attacked: httpx.AsyncClient, params: dict[str, str], words: str
) -> None:
    answer = await attacked.get("/entities", params=params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["type"] == ERRORS + "BadRequestData"
    assert words in body["detail"]


async def test_orders_other_than_by_id_stay_exact(attacked: httpx.AsyncClient) -> None:
    params = {"type": "R", "q": "name~=a", "limit": "2"}
    last = await attacked.get("/entities", params={**params, "orderBy": "id;desc"})
    assert last.status_code == 200, last.text
    assert [item["id"] for item in last.json()] == ["urn:x:R:b", EVIL_ID]
    by_name = await attacked.get(
        "/entities", params={**params, "orderBy": "name;desc", "idPattern": "a!$"}
    )
    assert by_name.status_code == 200, by_name.text
    assert [item["id"] for item in by_name.json()] == [EVIL_ID, f"urn:x:R:{'a' * 30}!"]


async def test_a_pattern_beside_a_geo_query(attacked: httpx.AsyncClient) -> None:
    for number, lon in ((1, 11.10), (2, 11.50)):
        created = await attacked.post(
            "/entities",
            json={
                "id": f"urn:x:G:{number}",
                "type": "G",
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [lon, 43.9]},
                },
            },
        )
        assert created.status_code == 201, created.text
    near = {"georel": "near;maxDistance==50000", "geometry": "Point", "coordinates": "[11.1,43.9]"}
    both = await attacked.get("/entities", params={**near, "type": "G", "idPattern": "G:(1|2)$"})
    assert [item["id"] for item in both.json()] == ["urn:x:G:1", "urn:x:G:2"]
    one = await attacked.get("/entities", params={**near, "type": "G", "idPattern": "G:2$"})
    assert [item["id"] for item in one.json()] == ["urn:x:G:2"]


async def test_too_many_candidates_is_a_clear_refusal(broker_settings: BrokerSettings) -> None:
    """Past the candidates one query may test (the query budget's documents), the answer is
    TooComplexQuery naming the bound; a pattern anchored at a prefix narrows them."""
    settings = broker_settings.model_copy(update={"query_max_documents": 3})
    with ThreadedServer(create_app(settings)) as server:
        async with client(server.url, f"t{secrets.token_hex(6)}") as http:
            entities = [
                {"id": f"urn:x:C:{i}", "type": "C", "n": {"type": "Property", "value": f"v{i}"}}
                for i in range(5)
            ]
            created = await http.post("/entityOperations/create", json=entities)
            assert created.status_code == 201, created.text
            refused = await http.get("/entities", params={"type": "C", "idPattern": "C:[0-4]$"})
            assert refused.status_code == 403, refused.text
            body = refused.json()
            assert body["type"] == ERRORS + "TooComplexQuery"
            assert "at most 3 candidate entities" in body["detail"]
            narrowed = await http.get("/entities", params={"type": "C", "idPattern": "^urn:x:C:1"})
            assert narrowed.status_code == 200, narrowed.text
            assert [item["id"] for item in narrowed.json()] == ["urn:x:C:1"]


async def test_too_many_matches_for_the_store_to_order_is_a_clear_refusal(
    attacked: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Store, "traits", replace(QUERY_TRAITS, max_ordered_by_ids=1))
    params = {"type": "R", "q": "name~=a", "orderBy": "name"}
    refused = await attacked.get("/entities", params=params)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == ERRORS + "TooComplexQuery"
    assert "at most 1 entities" in refused.json()["detail"]
    by_id = await attacked.get("/entities", params={**params, "orderBy": "id"})
    assert by_id.status_code == 200, by_id.text
