"""The example Grafana dashboard in docs/ queries only metrics the stack exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from contesto._ingest_metrics import IngestMetrics
from contesto._stack_metrics import restart_counter
from context_broker._metrics import BrokerMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
# The metric names in a PromQL expression (all of Contesto's start with contesto_).
METRIC = re.compile(r"\bcontesto_[a-z0-9_]+\b")
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def exported_names() -> set[str]:
    """Every series name the API, ingest and `contesto up` can expose."""
    registry = CollectorRegistry()
    IngestMetrics(registry)
    restart_counter(registry)
    registries = [registry, BrokerMetrics().registry]
    return {
        family.name + suffix
        for each in registries
        for family in each.collect()
        for suffix in _SUFFIXES[family.type]
    }


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in expressions(value)]
    if isinstance(node, list):
        return [e for item in node for e in expressions(item)]
    return []


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {name for expr in expressions(dashboard) for name in METRIC.findall(expr)}
    assert queried, "the dashboard queries no Contesto metric"
    assert queried - exported_names() == set()


def test_the_dashboard_shows_every_exported_metric() -> None:
    """Nothing the stack measures is left off the example."""
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {name for expr in expressions(dashboard) for name in METRIC.findall(expr)}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in exported_names()}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried}
    assert families - shown == set()


def test_a_misspelled_metric_is_caught() -> None:
    assert "contesto_http_request_total" not in exported_names()
    assert "contesto_http_requests_total" in exported_names()
