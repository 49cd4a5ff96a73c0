"""The API process's Prometheus metrics and their exposition.

One process alone keeps its metrics in memory. Under `contesto up` the API and the ingest
process write them to files in one directory (prometheus-client's multiprocess mode, on
when `PROMETHEUS_MULTIPROC_DIR` is set before the metrics are created), and a scrape of the
API's `/metrics` reads them all, so it shows both processes.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

__all__ = [
    "EXPOSITION_TYPE",
    "MULTIPROCESS_ENV",
    "BrokerMetrics",
    "StoreLatency",
    "is_metrics_key",
    "shared_metrics",
]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXPOSITION_TYPE = CONTENT_TYPE_LATEST

# Seconds: a read by id takes about a millisecond, a budgeted query up to its time budget.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


def is_metrics_key(authorization: str | None, metrics_key: str | None) -> bool:
    """Whether an `Authorization` header carries the metrics key as its bearer token."""
    if not metrics_key or authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), metrics_key.encode()
    )


@contextlib.contextmanager
def shared_metrics(directory: str) -> Iterator[None]:
    """Within, metrics created in this process (and in the children it starts, through
    the environment) go to files in `directory`, which one scrape reads whole."""
    before = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = before
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class BrokerMetrics:
    """Requests by route template, status and tenant; latencies; store commands;
    notifications by outcome."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "contesto_http_requests",
            "HTTP requests answered, by method, route template, status and tenant",
            ["method", "route", "status", "tenant"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "contesto_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route",
            ["method", "route"],
            registry=self.registry,
            buckets=_REQUEST_BUCKETS,
        )
        self.store_seconds = Histogram(
            "contesto_store_command_duration_seconds",
            "Store round trips of the API process, by command",
            ["command", "outcome"],
            registry=self.registry,
            buckets=_STORE_BUCKETS,
        )
        self.notifications = Counter(
            "contesto_notifications",
            "Notifications settled, by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.api_violations = Counter(
            "contesto_api_validation_violations",
            "Profile violations found in API writes, by tenant and mode (warn, enforce)",
            ["tenant", "mode"],
            registry=self.registry,
        )
        # Whether a tenant exists, so its requests carry its name; set once the store is open.
        self.tenant_known: Callable[[str], bool] = _never_known

    def api_violations_found(self, tenant: str, mode: str, count: int) -> None:
        self.api_violations.labels(tenant, mode).inc(count)

    def notification_settled(self, outcome: str) -> None:
        self.notifications.labels(outcome).inc()

    def exposition(self) -> bytes:
        """The text format of every metric: all processes' in multiprocess mode."""
        directory = os.environ.get(MULTIPROCESS_ENV)
        if directory:
            shared = CollectorRegistry()
            MultiProcessCollector(shared, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(shared)
        return generate_latest(self.registry)


def _never_known(_tenant: str) -> bool:
    return False


class StoreLatency(CommandListener):
    """Times every store command the API's client sends (the driver measures them)."""

    def __init__(self, metrics: BrokerMetrics) -> None:
        self._histogram = metrics.store_seconds

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self._histogram.labels(event.command_name, "ok").observe(event.duration_micros / 1e6)

    def failed(self, event: CommandFailedEvent) -> None:
        self._histogram.labels(event.command_name, "error").observe(event.duration_micros / 1e6)
