"""A `q` cannot make the broker multiply out its alternatives, recurse without end or read an
unbounded text: too many terms, too deep a nesting or too long a text is a prompt 400 that
names the limit, in bounded memory."""

from __future__ import annotations

import secrets
import time
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest

from context_broker._errors import BadRequestData
from context_broker._query import parse_q
from context_broker._query._plan import EntityQuery, plan
from context_broker._query._store_traits import QUERY_TRAITS

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
SIXTY_TERMS = ";".join(f"x{i}>0" for i in range(60))


@pytest.fixture
async def api(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1",
        headers={"NGSILD-Tenant": f"t{secrets.token_hex(6)}"},
        timeout=httpx.Timeout(10.0),
    ) as http:
        created = await http.post(
            "/entityOperations/create",
            json=[
                {
                    "id": f"urn:x:T:{i}",
                    "type": "T",
                    "x0": {"type": "Property", "value": i},
                    "x1": {"type": "Property", "value": i * 2},
                    "x2": {"type": "Property", "value": "on" if i % 2 else "off"},
                }
                for i in range(4)
            ],
        )
        assert created.status_code == 201, created.text
        yield http


def assert_bad_request(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["type"] == ERRORS + "BadRequestData"
    for word in words:
        assert word in body["detail"]


@pytest.mark.integration
async def test_sixty_and_ed_terms_answer_400_promptly(api: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    answer = await api.get("/entities", params={"type": "T", "q": SIXTY_TERMS})
    assert time.perf_counter() - started < 2.0
    assert_bad_request(answer, "32 terms")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("q", "words"),
    [
        ("(" * 2_000 + "x0>0" + ")" * 2_000, ("32 levels",)),
        ("x0==" + ",".join(["1"] * 3000), ("4096 characters",)),
    ],
)
async def test_deep_or_long_q_answers_400(
    api: httpx.AsyncClient, q: str, words: tuple[str, ...]
) -> None:
    answer = await api.post("/entityOperations/query", json={"type": "Query", "q": q})
    assert_bad_request(answer, *words)


@pytest.mark.integration
async def test_an_ordinary_q_still_selects(api: httpx.AsyncClient) -> None:
    answer = await api.get("/entities", params={"type": "T", "q": 'x0>0;x1<6;x2=="on"'})
    assert answer.status_code == 200, answer.text
    assert [item["id"] for item in answer.json()] == ["urn:x:T:1"]


def test_many_alternatives_are_counted_before_they_are_built() -> None:
    """Thirty-two terms are allowed: thirty-one AND-ed, each of three alternatives, and one
    more make over 3^31; the plan falls back to one filter without building any of them."""
    q = parse_q(";".join(f"x{i}>0" for i in range(31)) + "|" + "x99>0")
    tracemalloc.start()
    try:
        started = time.perf_counter()
        filters = plan(EntityQuery(q=q), QUERY_TRAITS).lookups
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(filters) == 1
    assert elapsed < 1.0
    assert peak < 2_000_000


def test_the_term_limit_holds_for_any_shape() -> None:
    with pytest.raises(BadRequestData, match="32 terms"):
        parse_q("|".join(f"(a{i};b{i})" for i in range(17)))
