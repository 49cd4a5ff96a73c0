"""Reports of a broker conformance run: JSON, JUnit XML and a one-line Markdown summary.

Pure functions from a `SuiteResult` to text; writing the files is the caller's business.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from conformance_tests._broker_framework import Outcome
from conformance_tests._broker_runner import SuiteResult

__all__ = ["SPEC", "markdown_line", "to_json", "to_junit_xml"]

SPEC = "ETSI GS CIM 009 V1.8"


def to_json(result: SuiteResult) -> str:
    """The whole run: broker, tenant, totals, per-group counts and every check's result."""
    totals = result.counts()
    document: dict[str, Any] = {
        "spec": SPEC,
        "broker": result.url,
        "tenant": result.tenant,
        "runId": result.run_id,
        "startedAt": result.started_at.isoformat(),
        "durationS": result.duration_s,
        "ok": result.ok,
        "totals": {
            "checks": totals.total,
            "passed": totals.passed,
            "failed": totals.failed,
            "notSupported": totals.not_supported,
        },
        "groups": {
            group: {
                "passed": counts.passed,
                "failed": counts.failed,
                "notSupported": counts.not_supported,
            }
            for group in result.groups()
            for counts in [result.counts(group)]
        },
        "checks": [
            {
                "id": r.id,
                "group": r.group,
                "clause": r.clause,
                "title": r.title,
                "outcome": r.outcome.value,
                "reason": r.reason,
                "durationS": r.duration_s,
            }
            for r in result.results
        ],
        "cleanupProblems": list(result.cleanup_problems),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def to_junit_xml(result: SuiteResult) -> str:
    """JUnit XML: a testsuite per group, a testcase per check; fail is <failure>, not-supported
    is <skipped>."""
    totals = result.counts()
    root = ET.Element(
        "testsuites",
        name=f"NGSI-LD conformance ({SPEC})",
        tests=str(totals.total),
        failures=str(totals.failed),
        skipped=str(totals.not_supported),
        errors="0",
        time=f"{result.duration_s:.3f}",
    )
    for group in result.groups():
        counts = result.counts(group)
        chosen = [r for r in result.results if r.group == group]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=group,
            tests=str(counts.total),
            failures=str(counts.failed),
            skipped=str(counts.not_supported),
            errors="0",
            time=f"{sum(r.duration_s for r in chosen):.3f}",
            timestamp=result.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="broker", value=result.url)
        ET.SubElement(properties, "property", name="tenant", value=result.tenant or "")
        for r in chosen:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"ngsi_ld.{group}",
                name=f"{r.id}: {r.title} (clause {r.clause})",
                time=f"{r.duration_s:.3f}",
            )
            if r.outcome is Outcome.FAIL:
                failure = ET.SubElement(case, "failure", message=r.reason, type="NonConformance")
                failure.text = f"{SPEC} clause {r.clause}: {r.reason}"
            elif r.outcome is Outcome.NOT_SUPPORTED:
                ET.SubElement(case, "skipped", message=f"not supported: {r.reason}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def markdown_line(result: SuiteResult) -> str:
    """`Conformance: X/Y checks passed (YYYY-MM-DD, URL)`, for a README to include."""
    totals = result.counts()
    day = result.started_at.date().isoformat()
    return f"Conformance: {totals.passed}/{totals.total} checks passed ({day}, {result.url})"
