"""Readiness: whether a process should receive traffic, check by check.

The API's store check reads the store client's heartbeat state (refreshed by the driver
every second), so a probe costs no store query. The ingest checks read the status each
ingest worker makes once a second: the API reads the files the workers write (named in
`CONTESTO_INGEST_STATUS_FILE`, set by `contesto up`), at most once a second, and is ready
only while every worker's status is fresh; without such files (the API deployed alone)
they are not made. Ingest's own `/health/ready` reads its status from memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Check", "Readiness", "ReadinessLimits", "health_body", "status_file_reader"]

_REREAD_S = 1.0


@dataclass(slots=True, frozen=True)
class Check:
    """One check's verdict and, when it failed, why."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True, frozen=True)
class ReadinessLimits:
    """Above these the API reports itself not ready."""

    max_ingest_lag_s: float
    max_outbox_depth: int
    max_status_age_s: float


def health_body(checks: list[Check]) -> tuple[bool, bytes]:
    """Whether all checks pass, and the JSON body of /health/ready naming each check and,
    for a failed one, why."""
    ok = all(check.ok for check in checks)
    body = {
        "status": "ready" if ok else "not ready",
        "checks": {
            check.name: {"ok": check.ok, **({"detail": check.detail} if check.detail else {})}
            for check in checks
        },
    }
    return ok, orjson.dumps(body)


def status_file_reader(path: Path) -> Callable[[], bytes | None]:
    """The ingest status as the file holds it; None while there is none."""

    def read() -> bytes | None:
        try:
            return path.read_bytes()
        except OSError:
            return None

    return read


StatusReader = Callable[[], bytes | None]


class Readiness:
    """The checks of `/health/ready`: the store's when `store_down` is given (the store
    client's reachability), and those of each ingest worker whose status `ingest_statuses`
    reads (as JSON): `ingest` and `mqtt` of worker 0, `ingest-N` and `mqtt-N` of worker N,
    and the shared outbox's `outbox` and `ingestLag` as worker 0 sees them."""

    def __init__(
        self,
        store_down: Callable[[], bool] | None,
        ingest_statuses: Sequence[StatusReader],
        limits: ReadinessLimits,
    ) -> None:
        self._store_down = store_down
        self._ingest_statuses = tuple(ingest_statuses)
        self._limits = limits
        self._ingest: list[Check] = []
        self._read_at = -_REREAD_S

    def checks(self) -> list[Check]:
        checks = []
        if self._store_down is not None:
            if self._store_down():
                detail = "the store does not answer its client's heartbeat"
                checks.append(Check("store", False, detail))
            else:
                checks.append(Check("store", True))
        if self._ingest_statuses:
            now = time.monotonic()
            if now - self._read_at >= _REREAD_S:
                self._read_at = now
                self._ingest = [
                    check
                    for index, read in enumerate(self._ingest_statuses)
                    for check in self._worker_checks(index, read())
                ]
            checks += self._ingest
        return checks

    def _worker_checks(self, index: int, raw: bytes | None) -> list[Check]:
        """Worker `index`'s checks: it reports, it is connected to MQTT, and (worker 0
        only, the outbox being one for all) the outbox's depth and lag."""
        suffix = f"-{index}" if index else ""
        who = "the ingest process" if len(self._ingest_statuses) == 1 else f"ingest worker {index}"
        try:
            status: dict[str, Any] = orjson.loads(raw) if raw is not None else {}
        except orjson.JSONDecodeError:
            status = {}
        if not status:
            return [Check(f"ingest{suffix}", False, f"{who} has written no status")]
        limits = self._limits
        age = time.time() - float(status.get("at", 0))
        if age > limits.max_status_age_s:
            return [Check(f"ingest{suffix}", False, f"{who}'s status is {age:.0f} s old")]
        checks = [Check(f"ingest{suffix}", True)]
        if status.get("mqttConnected"):
            checks.append(Check(f"mqtt{suffix}", True))
        else:
            checks.append(
                Check(f"mqtt{suffix}", False, f"{who} is not connected to the MQTT broker")
            )
        if index:
            return checks
        depth, lag = status.get("outboxDepth"), status.get("lagSeconds")
        if depth is None or lag is None:
            checks.append(Check("outbox", False, "ingest cannot read the outbox"))
            return checks
        if depth > limits.max_outbox_depth:
            detail = f"{depth} records wait in the outbox (limit {limits.max_outbox_depth})"
            checks.append(Check("outbox", False, detail))
        else:
            checks.append(Check("outbox", True))
        if lag > limits.max_ingest_lag_s:
            limit = limits.max_ingest_lag_s
            detail = f"the oldest outbox record waits for {lag:.1f} s (limit {limit:g} s)"
            checks.append(Check("ingestLag", False, detail))
        else:
            checks.append(Check("ingestLag", True))
        return checks
