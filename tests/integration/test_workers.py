"""`contesto up --workers 2`: two API processes serve one port, each restarted alone when it
dies, with caches that see what the other process changed; two ingest workers share one
MQTT v5 subscription group, so each message is ingested exactly once."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from _servers import QuietHandler, serving
from _stack_up import Up, alive, free_port
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from sensor_ingest._mqtt import MqttOptions, MqttPublisher

pytestmark = pytest.mark.integration

NGSI_LD = "/ngsi-ld/v1"
WORKERS = 2


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    running = Up(tmp_path_factory.mktemp("workers"), free_port(), {"CONTESTO_WORKERS": "2"})
    try:
        running.wait_until_up()
        yield running
    finally:
        running.close()


def _children_running(up: Up, mark: bytes) -> list[int]:
    """PIDs of the children of `contesto up` whose command line holds `mark`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[-1].split()[1]) == up.process.pid and mark in argv:
            found.append(int(entry.name))
    return sorted(found)


def _api_pids(up: Up) -> list[int]:
    return _children_running(up, b"contesto._api_worker")


def _ingest_pids(up: Up) -> list[int]:
    return _children_running(up, b" ingest ")


def _serving_pid(connection: http.client.HTTPConnection, candidates: list[int]) -> int | None:
    """Which of `candidates` holds the server side of `connection` (after an answer on it)."""
    assert connection.sock is not None
    server_port = connection.sock.getpeername()[1]
    client_port = connection.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
    assert inode is not None, "the server side of the connection is not in /proc/net/tcp"
    for pid in candidates:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _request(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    payload = None if body is None else orjson.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, NGSI_LD + path, body=payload, headers=all_headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def _connection_to(up: Up, pid: int) -> http.client.HTTPConnection:
    """A fresh keep-alive connection that API process `pid` accepted."""
    for _ in range(200):
        connection = http.client.HTTPConnection("127.0.0.1", up.port, timeout=20)
        status, _ = _request(connection, "GET", "/types")
        assert status == 200
        if _serving_pid(connection, [pid]) == pid:
            return connection
        connection.close()
    pytest.fail(f"200 fresh connections and API process {pid} accepted none")


def _http_requests_counted(up: Up, path_part: str) -> float:
    """GET requests whose route holds `path_part`, as one scrape of /metrics counts them."""
    text = httpx.get(f"http://127.0.0.1:{up.port}/metrics", timeout=20).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "contesto_http_requests_total"
        and sample.labels.get("method") == "GET"
        and path_part in sample.labels.get("route", "")
    )


def test_fresh_connections_spread_over_both_api_processes_and_metrics_count_them_all(
    up: Up,
) -> None:
    """Both processes accept connections on the one port, and a scrape answered by either
    counts the requests both answered."""
    pids = _api_pids(up)
    assert len(pids) == WORKERS, up.output()
    before = _http_requests_counted(up, "/entities")
    answered_by: dict[int, int] = dict.fromkeys(pids, 0)
    lock = threading.Lock()

    def ask(times: int) -> None:
        for _ in range(times):
            connection = http.client.HTTPConnection("127.0.0.1", up.port, timeout=20)
            status, _ = _request(connection, "GET", "/entities?type=Nothing")
            assert status == 200
            pid = _serving_pid(connection, pids)
            connection.close()
            assert pid is not None
            with lock:
                answered_by[pid] += 1

    threads = [threading.Thread(target=ask, args=(15,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(answered_by.values()) == 60
    assert all(count > 0 for count in answered_by.values()), answered_by
    assert _http_requests_counted(up, "/entities") - before >= 60


class _Notifications(QuietHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_body(200, b"{}")


def test_a_subscription_made_through_one_process_notifies_a_write_answered_by_the_other(
    up: Up,
) -> None:
    """ETSI GS CIM 009 V1.8.1 clause 5.8.1 (Create Subscription) and 5.11 (notification
    behaviour): once the subscription is created, a matching entity creation notifies,
    whichever API process took the write."""
    first, second = _api_pids(up)
    tenant = f"wk{secrets.token_hex(4)}"
    headers = {"NGSILD-Tenant": tenant}
    entity_type = "https://example.org/WorkerProbe"
    with serving(_Notifications) as endpoint:
        through_first = _connection_to(up, first)
        status, body = _request(
            through_first,
            "POST",
            "/subscriptions",
            {
                "id": f"urn:ngsi-ld:Subscription:{tenant}",
                "type": "Subscription",
                "entities": [{"type": entity_type}],
                "notification": {"endpoint": {"uri": f"{endpoint}/notify"}},
            },
            headers,
        )
        assert status == 201, body
        through_second = _connection_to(up, second)
        entity_id = f"urn:ngsi-ld:WorkerProbe:{tenant}"
        status, body = _request(
            through_second,
            "POST",
            "/entities",
            {"id": entity_id, "type": entity_type, "n": {"type": "Property", "value": 1}},
            headers,
        )
        assert status == 201, body
        deadline = time.monotonic() + 15
        while not any(
            entity["id"] == entity_id
            for notification in _Notifications.received
            for entity in notification.get("data", [])
        ):
            assert time.monotonic() < deadline, "no notification for the entity in 15 s"
            time.sleep(0.1)
        through_first.close()
        through_second.close()


def test_an_api_process_killed_under_load_is_restarted_while_the_other_answers(
    up: Up,
) -> None:
    """kill -9 of one API process: requests on fresh connections keep being answered by the
    other one; only those the killed process held may fail; it is restarted alone."""
    victim, survivor = _api_pids(up)
    others_before = {name: _children_running(up, name) for name in (b"secantusd", b" ingest ")}
    stop = threading.Event()
    answered: list[float] = []
    failed: list[float] = []

    def load() -> None:
        while not stop.is_set():
            try:
                status = httpx.get(f"{up.url}/types", timeout=10).status_code
            except httpx.TransportError:
                failed.append(time.monotonic())
                continue
            (answered if status == 200 else failed).append(time.monotonic())

    clients = [threading.Thread(target=load) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(0.5)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        up.wait_for_output("contesto up: API process", timeout_s=20)
        up.wait_for_output("runs again", timeout_s=30)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in clients:
            thread.join(20)
    assert not alive(victim)
    restarted = _api_pids(up)
    assert survivor in restarted and len(restarted) == WORKERS, up.output()
    assert len(failed) <= len(clients), f"{len(failed)} requests failed after the kill"
    during_restart = [at for at in answered if at > killed_at]
    assert len(during_restart) > 20, "the surviving API process stopped answering"
    # Restarted alone: the store and ingest workers kept their processes.
    for name, pids in others_before.items():
        assert _children_running(up, name) == pids, name


def _ingested_by(up: Up, pid: int) -> float:
    """Messages ingest worker `pid` counted, from its own multiprocess metrics file."""
    path = up.data_dir / "metrics" / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    return sum(
        value
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path))
        if json.loads(key)[1] == "contesto_ingest_messages_total"
    )


def test_mqtt_messages_of_several_devices_are_each_ingested_once_by_one_of_two_workers(
    up: Up,
) -> None:
    """The two ingest workers share one subscription: every QoS 1 message published is
    stored, the workers together count exactly as many messages as were published, and
    both took a share."""
    workers = _ingest_pids(up)
    assert len(workers) == WORKERS, up.output()
    tenant, key = f"wm{secrets.token_hex(4)}", f"key-{secrets.token_hex(4)}"
    answer = httpx.post(
        f"http://127.0.0.1:{up.provisioning_port}/iot/services",
        json={
            "services": [
                {
                    "apikey": key,
                    "entity_type": "WorkerFeed",
                    "resource": "/iot/json",
                    "explicitAttrs": True,
                    "attributes": [{"object_id": "n", "name": "n", "type": "Property"}],
                }
            ]
        },
        headers={"fiware-service": tenant, "fiware-servicepath": "/"},
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    devices, per_device = 8, 25
    with MqttPublisher(MqttOptions(port=up.mqtt_port)) as mqtt:
        for n in range(devices * per_device):
            mqtt.publish(f"/json/{key}/dev-{n}/attrs", orjson.dumps({"n": n}))
    wanted = set(range(devices * per_device))
    deadline = time.monotonic() + 30
    stored: set[int] = set()
    while stored != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        entities = httpx.get(
            f"{up.url}/entities",
            params={"type": "WorkerFeed", "limit": "1000", "options": "keyValues"},
            headers={"NGSILD-Tenant": tenant},
            timeout=20,
        )
        if entities.status_code == 404:  # the tenant exists once ingest stored a first entity
            continue
        assert entities.status_code == 200, entities.text
        stored = {int(entity["n"]) for entity in entities.json()}
    assert stored == wanted, f"{len(wanted - stored)} messages not stored"
    shares = [_ingested_by(up, pid) for pid in workers]
    assert sum(shares) == len(wanted), shares
    assert all(share > 0 for share in shares), shares


def _readiness(up: Up) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{up.url.removesuffix(NGSI_LD)}/health/ready", timeout=10)
    return answer.status_code, answer.json()["checks"]


def test_readiness_reports_a_killed_ingest_worker_until_it_is_back(up: Up) -> None:
    """/health/ready covers every ingest worker, not only the first: after kill -9 of
    worker 1 the API is not ready, naming `ingest-1`, until the supervisor has it back."""
    deadline = time.monotonic() + 15
    while (ready := _readiness(up))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ready[0] == 200, ready
    assert ready[1]["ingest-1"] == {"ok": True} and ready[1]["mqtt-1"] == {"ok": True}
    (victim,) = _children_running(up, b"--no-provisioning")
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while (ready := _readiness(up))[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, checks = ready
    assert status == 503, checks
    assert checks["ingest-1"]["ok"] is False, checks
    assert checks["ingest"] == {"ok": True}
    deadline = time.monotonic() + 30
    while (ready := _readiness(up))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ready[0] == 200, (ready, up.output())
    (restarted,) = _children_running(up, b"--no-provisioning")
    assert restarted != victim


def test_sigterm_stops_every_worker_within_10_s(up: Up) -> None:
    """Ctrl-C or SIGTERM stops the stack within 10 s with exit status 0, every API process
    and ingest worker included."""
    workers = _api_pids(up) + _ingest_pids(up)
    assert len(workers) == 2 * WORKERS
    started = time.monotonic()
    assert up.stop(signal.SIGTERM) == 0, up.output()
    assert time.monotonic() - started < 10
    assert not any(alive(pid) for pid in workers)


def test_workers_refuse_the_mqtt_3_fallback(tmp_path: Path) -> None:
    """amqtt has no shared subscriptions: with two workers each would take every message."""
    refused = Up(tmp_path, free_port(), {"CONTESTO_WORKERS": "2", "CONTESTO_MQTT_BROKER": "amqtt"})
    try:
        assert refused.process.wait(60) == 1
        assert "needs MQTT v5 shared subscriptions" in refused.output()
        assert "--workers 1" in refused.output()
    finally:
        refused.close()
