"""No input anywhere in the API is a 500 (issue #16, "Done when"): requests generated from
the broker's own OpenAPI description, every operation with its declared parameters given
odd values, odd headers and odd bodies, sent over real HTTP. A client mistake is a
ProblemDetails (clause 5.5.2 / 6.3.1) with a 4xx status; nothing is an internal error."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytestmark = pytest.mark.integration

TENANT = f"fuzz{secrets.token_hex(4)}"
REQUESTS = 600
Operation = tuple[str, str, list[dict[str, Any]]]
# Operations whose effect reaches beyond one tenant (the admin API of the dev profile)
# stay out: the fuzzed tenant is the only thing these requests may change.
_OUT_OF_SCOPE = ("/admin", "/metrics", "/openapi.json")

ODD_TEXT = [
    "",
    " ",
    "*",
    ",",
    ";",
    "|",
    "{",
    "}",
    "()",
    "%",
    "%zz",
    "\u0000",
    "\u202e",
    "\ufeff",
    "urn:ngsi-ld:X:1",
    "urn:ngsi-ld:null",
    "https://uri.etsi.org/ngsi-ld/default-context/x",
    "a" * 300,
    "-1",
    "0",
    "1e309",
    "99999999999999999999",
    "true",
    "null",
    "[1,2]",
    '{"a":1}',
    "x==1",
    'x=="a"|y>2;(z!=3)',
    "x~=(a+)+$",
    "a.b[c]==1",
    "near;maxDistance==10",
    "within",
    "Point",
    "[[1,2],[3,4]]",
    "2026-12-03T10:00:00Z",
    "2026-13-40T99:00:00",
    "P1D",
    "id,type",
    "name{a,b}",
    "keyValues",
    "sysAttrs,count",
    "@none",
    "ngsi-ld=1.0",
]

ACCEPT = [
    "application/json",
    "application/ld+json",
    "application/geo+json",
    "text/html",
    "*/*",
    "application/json;q=0",
    "application/json;q=x, application/ld+json",
    "",
]
CONTENT_TYPE = [
    "application/json",
    "application/ld+json",
    "application/merge-patch+json",
    "text/plain",
    "application/json; charset=latin-1",
]
LINK = [
    None,
    "<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"',
    '<not a url>; rel="http://www.w3.org/ns/json-ld#context"',
    '<http://[::1>; rel="http://www.w3.org/ns/json-ld#context"',
    "garbage",
]


def _operations(broker_url: str) -> list[Operation]:
    description = httpx.get(broker_url + "/openapi.json", timeout=10).json()
    found = []
    for path, methods in description["paths"].items():
        if path.startswith(_OUT_OF_SCOPE):
            continue
        for method, operation in methods.items():
            found.append((method.upper(), path, operation.get("parameters", [])))
    return found


@pytest.fixture(scope="module")
def http(broker_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broker_url, timeout=30.0) as client:
        created = client.post(
            "/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:X:1", "type": "X", "a": {"type": "Property", "value": 1}},
            headers={"NGSILD-Tenant": TENANT},
        )
        assert created.status_code == 201, created.text
        yield client


Request = tuple[str, str, dict[str, str], dict[str, str], Any]


def _text(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(ODD_TEXT)
    return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(12)))


def _json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**63, 1.5e308, -0.0])
    if kind in (2, 3, 4):
        return _text(rng)
    if kind == 5:
        return [_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["id", "type", "value", "object", "@context", "a", "location", ""]
    return {
        rng.choice(keys) if rng.random() < 0.8 else _text(rng): _json(rng, depth + 1)
        for _ in range(rng.randrange(5))
    }


def _request(rng: random.Random, operations: list[Operation]) -> Request:
    method, path, parameters = rng.choice(operations)
    query: dict[str, str] = {}
    for parameter in parameters:
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            path = path.replace("{" + name + "}", quote(_text(rng), safe="") or "x")
        elif where == "query" and rng.random() < 0.5:
            query[name] = _text(rng)
    if rng.random() < 0.1:
        query[rng.choice(["unknown", "q", "type", "limit"])] = _text(rng)
    headers = {"NGSILD-Tenant": TENANT, "Accept": rng.choice(ACCEPT)}
    link = rng.choice(LINK)
    if link is not None:
        headers["Link"] = link
    body = None
    if method in ("POST", "PATCH", "PUT"):
        headers["Content-Type"] = rng.choice(CONTENT_TYPE)
        body = _json(rng) if rng.random() < 0.8 else {"id": "urn:ngsi-ld:X:1", "type": "X"}
    return method, path, query, headers, body


def test_no_generated_request_is_an_internal_error(broker_url: str, http: httpx.Client) -> None:
    operations = _operations(broker_url)
    assert len(operations) > 25, "the OpenAPI description lists the API's operations"
    rng = random.Random(20261203)
    statuses: Counter[int] = Counter()
    for _ in range(REQUESTS):
        method, path, query, headers, body = _request(rng, operations)
        answer = http.request(method, path, params=query, headers=headers, json=body)
        described = f"{method} {path} {query} {headers} {body!r:.300} -> {answer.text:.300}"
        assert answer.status_code != 500, described
        statuses[answer.status_code] += 1
        if answer.status_code >= 400 and path.startswith("/ngsi-ld"):
            problem = answer.json()
            assert problem["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/"), described
            assert problem["status"] == answer.status_code, described
    # The requests reach past the first checks: some succeed, and refusals are of
    # several kinds.
    assert sum(statuses[status] for status in range(200, 300)) >= 10, statuses
    assert len([status for status in statuses if status >= 400]) >= 4, statuses
