"""What the broker stores is what it was sent: no control characters in identifiers and
names, and integers kept exact (64 bits) or refused, never rounded.

Integers: the body is parsed exactly (orjson: Python ints up to 64 bits, larger bodies
refused), stored as 64-bit integers and read back exactly; beyond 64 bits the answer is
400 naming the attribute. So 2^53 + 1 comes back as 2^53 + 1, and a query compares it
exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

CONTROL = ["\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x85", "\n"]
BIG = 2**53 + 1


@pytest.fixture
async def api(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the NGSI-LD API, in a tenant of its own."""
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1",
        headers={"NGSILD-Tenant": f"t{secrets.token_hex(6)}"},
        timeout=30.0,
    ) as http:
        yield http


def _problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["type"].endswith(kind), body
    return body


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
async def test_control_characters_in_ids_names_and_types_are_refused(
    api: httpx.AsyncClient, char: str
) -> None:
    bad_id = {"id": f"urn:ngsi-ld:X:a{char}b", "type": "X"}
    bad_type = {"id": "urn:ngsi-ld:X:t", "type": f"X{char}"}
    bad_attr = {"id": "urn:ngsi-ld:X:n", "type": "X", f"n{char}o": {"value": 1}}
    for payload in (bad_id, bad_type, bad_attr):
        _problem(await api.post("/entities", json=payload), 400, "BadRequestData")
    batch = await api.post("/entityOperations/upsert", json=[bad_id])
    assert batch.status_code in (400, 207), batch.text
    listed = await api.get("/entities", params={"type": "X"})
    assert listed.json() == []


async def test_a_control_character_in_an_id_of_a_path_is_refused(api: httpx.AsyncClient) -> None:
    _problem(await api.get("/entities/urn:ngsi-ld:X:a%00b"), 400, "BadRequestData")
    _problem(await api.delete("/entities/urn:ngsi-ld:X:a%01b"), 400, "BadRequestData")


async def test_integers_beyond_2_53_are_kept_exact(api: httpx.AsyncClient) -> None:
    values = {"big": BIG, "top": 2**63 - 1, "low": -(2**63), "nested": {"n": [BIG]}}
    entity = {"id": "urn:ngsi-ld:Counter:1", "type": "Counter"}
    entity |= {name: {"type": "Property", "value": value} for name, value in values.items()}
    created = await api.post("/entities", json=entity)
    assert created.status_code == 201, created.text
    read = await api.get("/entities/urn:ngsi-ld:Counter:1", params={"options": "keyValues"})
    assert {name: read.json()[name] for name in values} == values
    exact = await api.get("/entities", params={"type": "Counter", "q": f"big=={BIG}"})
    rounded = await api.get("/entities", params={"type": "Counter", "q": f"big=={BIG - 1}"})
    assert [e["id"] for e in exact.json()] == ["urn:ngsi-ld:Counter:1"]
    assert rounded.json() == []


@pytest.mark.parametrize("number", [str(2**63), str(2**64 - 1), str(2**64), "1" + "0" * 40])
async def test_integers_beyond_64_bits_are_refused_with_a_clear_400(
    api: httpx.AsyncClient, number: str
) -> None:
    body = '{"id": "urn:ngsi-ld:Counter:2", "type": "Counter", "n": {"value": ' + number + "}}"
    answer = await api.post("/entities", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "64" in answer.json()["detail"]
    missing = await api.get("/entities/urn:ngsi-ld:Counter:2")
    assert missing.status_code == 404
