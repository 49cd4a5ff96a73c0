"""What operators and their tools rely on, over real HTTP: liveness and readiness probes
that need no key and say which check failed, a Prometheus scrape with bounded labels, and
a request id on every answer."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from _servers import ThreadedServer
from fastapi import FastAPI

from contesto import EmbeddedStore
from contesto._embedded import free_port
from contesto._ingest_metrics import IngestMetrics
from contesto._ingest_operations import operations_router
from context_broker import BrokerSettings, ReadinessSettings, create_app
from context_broker._http._telemetry import RequestTelemetry
from context_broker._metrics import BrokerMetrics
from regional_tenants import REGION_TENANT, TenantRegistry, issue_key, onboard, platform_database
from regional_tenants._tenants import Tenant
from store_edge import connect

pytestmark = pytest.mark.integration

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` in a Prometheus text exposition, with their labels."""
    found = []
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"] == name:
            labels = dict(LABEL.findall(match["labels"] or ""))
            found.append((labels, float(match["value"])))
    return found


def requests_counted(metrics: str, **labels: str) -> float:
    return sum(
        value
        for found, value in samples(metrics, "contesto_http_requests_total")
        if all(found.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
def guarded_url(broker_settings: BrokerSettings) -> Iterator[str]:
    """The broker in the regional profile: every /ngsi-ld/ request needs an API key."""
    settings = broker_settings.model_copy(update={"auth_required": True})
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


def test_liveness_and_readiness_answer_without_a_key_in_the_regional_profile(
    guarded_url: str,
) -> None:
    """The probes hold no key: /health/* stay open while the NGSI-LD API asks for one."""
    refused = httpx.get(f"{guarded_url}/ngsi-ld/v1/types", headers={"X-Request-Id": "r-401"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "r-401"
    live = httpx.get(f"{guarded_url}/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "live"}
    ready = httpx.get(f"{guarded_url}/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.headers["content-type"] == "application/json"
    assert ready.json() == {"status": "ready", "checks": {"store": {"ok": True}}}
    # /metrics names the tenants: in the regional profile it asks for a key.
    scrape = httpx.get(f"{guarded_url}/metrics")
    assert scrape.status_code == 401
    assert scrape.headers["www-authenticate"] == "Bearer"


METRICS_KEY = "scrape-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def scraped_url(broker_settings: BrokerSettings) -> Iterator[str]:
    """The regional profile with a metrics key set."""
    settings = broker_settings.model_copy(
        update={"auth_required": True, "metrics_key": METRICS_KEY}
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


async def _keys(settings: BrokerSettings) -> tuple[str, str]:
    """A region-admin key and a reader key of another tenant."""
    client = connect(settings.mongo_url)
    try:
        registry = TenantRegistry(client[platform_database(settings.database_prefix)])
        now = datetime.now(UTC)
        await onboard(registry, Tenant(REGION_TENANT, "region", "Toscana", now), actor="test")
        region = await issue_key(registry, REGION_TENANT, "region-admin", actor="test")
        tenant = f"m{secrets.token_hex(4)}"
        await onboard(registry, Tenant(tenant, "utility", "M", now), actor="test")
        return region, await issue_key(registry, tenant, "reader", actor="test")
    finally:
        await client.close()


def _scrape(url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{url}/metrics", headers=headers)


async def test_metrics_take_the_metrics_key_or_a_region_admin_key_in_the_regional_profile(
    scraped_url: str, broker_settings: BrokerSettings
) -> None:
    """CONTESTO_METRICS_KEY as a bearer token, or a region-admin key, reads /metrics; a
    tenant's key is refused (403), no key or a wrong one asks for one (401)."""
    region_key, reader_key = await _keys(broker_settings)
    for token in (METRICS_KEY, region_key):
        answer = _scrape(scraped_url, token)
        assert answer.status_code == 200, answer.text
        assert "contesto_http_requests_total" in answer.text
    assert _scrape(scraped_url, reader_key).status_code == 403
    for token in (None, "not-the-key"):
        refused = _scrape(scraped_url, token)
        assert refused.status_code == 401
        assert "CONTESTO_METRICS_KEY" in refused.json()["detail"]


def test_a_metrics_key_guards_metrics_in_the_dev_profile_too(
    broker_settings: BrokerSettings,
) -> None:
    """Set, the metrics key is asked for even where the NGSI-LD API asks for no key."""
    settings = broker_settings.model_copy(update={"metrics_key": METRICS_KEY})
    with ThreadedServer(create_app(settings)) as server:
        assert _scrape(server.url, None).status_code == 401
        assert _scrape(server.url, "wrong").status_code == 401
        assert _scrape(server.url, METRICS_KEY).status_code == 200
        assert httpx.get(f"{server.url}/ngsi-ld/v1/types").status_code == 200


@pytest.mark.parametrize(
    ("key_required", "metrics_key", "token", "status"),
    [
        (False, None, None, 200),
        (False, METRICS_KEY, None, 401),
        (False, METRICS_KEY, METRICS_KEY, 200),
        (True, None, "anything", 401),
        (True, METRICS_KEY, "wrong", 401),
        (True, METRICS_KEY, METRICS_KEY, 200),
    ],
)
def test_ingest_metrics_follow_the_metrics_key(
    key_required: bool, metrics_key: str | None, token: str | None, status: int
) -> None:
    """Ingest's /metrics (on its provisioning port) takes the same key; in the regional
    profile it is closed until the key is set."""
    app = FastAPI()
    settings = ReadinessSettings(metrics_key=metrics_key)
    app.include_router(operations_router(IngestMetrics(), settings, key_required=key_required))
    with ThreadedServer(app) as server:
        assert _scrape(server.url, token).status_code == status


def test_the_probes_answer_in_milliseconds(broker_url: str) -> None:
    """A probe reads no store: 50 readiness probes take well under a second."""
    with httpx.Client(base_url=broker_url) as http:
        http.get("/health/ready")
        started = time.perf_counter()
        for _ in range(50):
            assert http.get("/health/ready").status_code == 200
        per_probe_s = (time.perf_counter() - started) / 50
    assert per_probe_s < 0.02, f"{per_probe_s * 1000:.1f} ms per probe"


def _ready_within(url: str, status: int, timeout_s: float) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{url}/health/ready", timeout=5)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_readiness_follows_the_store_and_liveness_does_not(tmp_path: Path) -> None:
    """A store that stops answering makes the API not ready (503, `store` failed) within
    a few heartbeats while it stays live; once the store is back, ready again."""
    store = EmbeddedStore(tmp_path / "db", port=free_port())
    store.start()
    try:
        settings = BrokerSettings(mongo_url=store.url, database_prefix="readiness")
        with ThreadedServer(create_app(settings)) as api:
            assert _ready_within(api.url, 200, 5).status_code == 200
            store.stop()
            down = _ready_within(api.url, 503, 10)
            assert down.status_code == 503, down.text
            assert down.json()["checks"]["store"]["ok"] is False
            assert httpx.get(f"{api.url}/health/live").status_code == 200
            store.restart()
            back = _ready_within(api.url, 200, 15)
            assert back.status_code == 200, back.text
    finally:
        store.stop()


@pytest.fixture
def status_file(tmp_path: Path) -> Path:
    return tmp_path / "ingest-status.json"


@pytest.fixture
def with_ingest_url(broker_settings: BrokerSettings, status_file: Path) -> Iterator[str]:
    """The broker reading an ingest status file, with small limits."""
    settings = broker_settings.model_copy(
        update={
            "ingest_status_file": str(status_file),
            "ready_max_ingest_lag_s": 30.0,
            "ready_max_outbox_depth": 100,
            "ready_max_ingest_status_age_s": 5.0,
        }
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


def write_status(path: Path, *, age_s: float = 0.0, **fields: object) -> None:
    status = {"at": time.time() - age_s, "mqttConnected": True, "outboxDepth": 0}
    status["lagSeconds"] = 0.0
    status.update(fields)
    path.write_bytes(orjson.dumps(status))


def ready_after_refresh(url: str) -> httpx.Response:
    """The readiness answer once the API re-read the status (at most once a second)."""
    time.sleep(1.1)
    return httpx.get(f"{url}/health/ready")


def test_readiness_names_each_ingest_check_that_fails(
    with_ingest_url: str, status_file: Path
) -> None:
    """MQTT disconnected, the outbox too deep and the lag too long each make the API not
    ready (503), and the body says which check failed and why."""
    write_status(status_file)
    ready = ready_after_refresh(with_ingest_url)
    assert ready.status_code == 200, ready.text
    assert {name for name, check in ready.json()["checks"].items() if check["ok"]} == {
        "store",
        "ingest",
        "mqtt",
        "outbox",
        "ingestLag",
    }

    write_status(status_file, mqttConnected=False, outboxDepth=101, lagSeconds=31.0)
    refused = ready_after_refresh(with_ingest_url)
    assert refused.status_code == 503
    body = refused.json()
    assert body["status"] == "not ready"
    failed = {name: check["detail"] for name, check in body["checks"].items() if not check["ok"]}
    assert set(failed) == {"mqtt", "outbox", "ingestLag"}
    assert "101" in failed["outbox"]
    assert "31.0 s" in failed["ingestLag"]
    assert body["checks"]["store"] == {"ok": True}


def test_readiness_fails_when_ingest_stops_reporting(
    with_ingest_url: str, status_file: Path
) -> None:
    """No status, or one older than the limit: ingest is dead or stuck, not ready."""
    missing = httpx.get(f"{with_ingest_url}/health/ready")
    assert missing.status_code == 503
    assert missing.json()["checks"]["ingest"]["ok"] is False
    write_status(status_file, age_s=6.0)
    stale = ready_after_refresh(with_ingest_url)
    assert stale.status_code == 503
    assert re.search(r"status is [67] s old", stale.json()["checks"]["ingest"]["detail"])


async def test_requests_are_counted_by_route_template_status_and_tenant(
    api: httpx.AsyncClient, broker_url: str, tenant: str
) -> None:
    """Ids never become labels: reads of two entities count under one route template; an
    existing tenant is named, a tenant that does not exist is `unknown`."""
    for n in (1, 2):
        entity = {"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter"}
        assert (await api.post("/entities", json=entity)).status_code == 201
    scrape = httpx.get(f"{broker_url}/metrics")
    assert scrape.headers["content-type"].startswith("text/plain")
    before = scrape.text
    for n in (1, 2, 3):
        await api.get(f"/entities/urn:ngsi-ld:Meter:{n}")
    await api.get("/entities", params={"type": "Meter"})
    async with httpx.AsyncClient(base_url=broker_url) as other:
        nowhere = {"NGSILD-Tenant": f"{tenant}x"}
        assert (await other.get("/ngsi-ld/v1/types", headers=nowhere)).status_code == 404
        assert (await other.get("/no/such/path")).status_code == 404
    after = httpx.get(f"{broker_url}/metrics").text

    by_id = {"method": "GET", "route": "/ngsi-ld/v1/entities/{entity_id}", "tenant": tenant}
    assert (
        requests_counted(after, status="200", **by_id)
        - requests_counted(before, status="200", **by_id)
        == 2
    )
    assert (
        requests_counted(after, status="404", **by_id)
        - requests_counted(before, status="404", **by_id)
        == 1
    )
    query = {"method": "GET", "route": "/ngsi-ld/v1/entities", "status": "200", "tenant": tenant}
    assert requests_counted(after, **query) - requests_counted(before, **query) == 1
    assert requests_counted(after, route="/ngsi-ld/v1/types", tenant="unknown") >= 1
    assert requests_counted(after, route="unmatched", tenant="default", status="404") >= 1
    routes = {labels["route"] for labels, _ in samples(after, "contesto_http_requests_total")}
    assert not any("urn:ngsi-ld" in route for route in routes), routes

    latency = samples(after, "contesto_http_request_duration_seconds_count")
    assert any(labels.get("route") == by_id["route"] for labels, _ in latency)
    store = samples(after, "contesto_store_command_duration_seconds_count")
    assert any(labels.get("command") == "find" and value > 0 for labels, value in store)


def test_a_request_id_is_echoed_on_every_answer(broker_url: str, tenant: str) -> None:
    """A valid X-Request-Id comes back as sent; without one, or with one that is not a
    plausible id, the broker makes one; errors carry it too."""
    with httpx.Client(base_url=broker_url + "/ngsi-ld/v1") as http:
        given = http.get("/types", headers={"X-Request-Id": "trace-42.a:b_c"})
        assert given.headers["x-request-id"] == "trace-42.a:b_c"
        made = http.get("/types")
        assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
        assert made.headers["x-request-id"] != http.get("/types").headers["x-request-id"]
        for refused in ("x" * 129, "no spaces", "é"):
            answer = http.get("/types", headers={"X-Request-Id": refused.encode()})
            assert re.fullmatch(r"[0-9a-f]{16}", answer.headers["x-request-id"]), refused
        not_found = http.get("/entities/urn:ngsi-ld:Nothing:1", headers={"X-Request-Id": "r-1"})
        assert not_found.status_code == 404
        assert not_found.headers["x-request-id"] == "r-1"
        bad_tenant = http.get("/types", headers={"NGSILD-Tenant": "no/way", "X-Request-Id": "r-2"})
        assert bad_tenant.status_code == 400
        assert bad_tenant.headers["x-request-id"] == "r-2"
        # Refused for its shape before routing: 411 without a body length.
        unsized = http.build_request(
            "POST", "/entities", headers={"X-Request-Id": "r-3", "Transfer-Encoding": "identity"}
        )
        unsized.headers.pop("Content-Length", None)
        unsized.headers.pop("Transfer-Encoding", None)
        refused = http.send(unsized)
        assert refused.status_code == 411, refused.text
        assert refused.headers["x-request-id"] == "r-3"


async def _failing_app(scope: dict[str, object], receive: object, send: object) -> None:
    if scope["type"] == "http":
        raise RuntimeError("a bug")


def test_an_unexpected_error_is_answered_500_with_the_request_id() -> None:
    """An error no handler answers still gets the request id, in a ProblemDetails 500,
    and is counted."""
    metrics = BrokerMetrics()
    with ThreadedServer(RequestTelemetry(_failing_app, metrics)) as server:  # type: ignore[arg-type]
        answer = httpx.get(f"{server.url}/anything", headers={"X-Request-Id": "r-500"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "r-500"
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/InternalError"
    assert requests_counted(metrics.exposition().decode(), status="500") == 1
