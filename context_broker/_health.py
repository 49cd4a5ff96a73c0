"""Readiness: whether a process should receive traffic, check by check.

The API's store check reads the store client's heartbeat state (refreshed by the driver
every second), so a probe costs no store query. The ingest checks read the status the
ingest process makes once a second: the API reads it from the file ingest writes
(`CONTESTO_INGEST_STATUS_FILE`, set by `contesto up`), at most once a second; without that
file (the API deployed alone) they are not made. Ingest's own `/health/ready` reads it
from memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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


class Readiness:
    """The checks of `/health/ready`: the store's when `store_down` is given (the store
    client's reachability), ingest's when `ingest_status` is (its status as JSON)."""

    def __init__(
        self,
        store_down: Callable[[], bool] | None,
        ingest_status: Callable[[], bytes | None] | None,
        limits: ReadinessLimits,
    ) -> None:
        self._store_down = store_down
        self._ingest_status = ingest_status
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
        if self._ingest_status is not None:
            now = time.monotonic()
            if now - self._read_at >= _REREAD_S:
                self._read_at = now
                self._ingest = self._ingest_checks(self._ingest_status())
            checks += self._ingest
        return checks

    def _ingest_checks(self, raw: bytes | None) -> list[Check]:
        try:
            status: dict[str, Any] = orjson.loads(raw) if raw is not None else {}
        except orjson.JSONDecodeError:
            status = {}
        if not status:
            return [Check("ingest", False, "the ingest process has written no status")]
        limits = self._limits
        age = time.time() - float(status.get("at", 0))
        if age > limits.max_status_age_s:
            return [Check("ingest", False, f"the ingest process's status is {age:.0f} s old")]
        checks = [Check("ingest", True)]
        if status.get("mqttConnected"):
            checks.append(Check("mqtt", True))
        else:
            checks.append(Check("mqtt", False, "ingest is not connected to the MQTT broker"))
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
