"""The metrics `contesto up` keeps itself: restarts of its children by the supervisor."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

__all__ = ["restart_counter"]

_CHILD_LABELS = {
    "the embedded store": "store",
    "the MQTT broker": "mqtt",
    "the ingest process": "ingest",
}


def restart_counter(registry: CollectorRegistry | None = None) -> Callable[[str], None]:
    """A callback for the supervisor that counts each restart by child (store, mqtt,
    ingest); create it once the stack shares its metrics directory, whose files the
    scrape reads (so no registry is needed)."""
    restarts = Counter(
        "contesto_child_restarts",
        "Children of `contesto up` started again after they died",
        ["child"],
        registry=registry,
    )

    def restarted(name: str) -> None:
        restarts.labels(_CHILD_LABELS.get(name, name)).inc()

    return restarted
