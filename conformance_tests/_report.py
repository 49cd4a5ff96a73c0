"""A conformance run as JSON, JUnit XML and a self-contained HTML page (pure)."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datamodels import Violation

from ._check import MessageResult
from ._timing import Timing

__all__ = ["Report", "as_dict", "timing_lines", "to_html", "to_json", "to_junit"]


@dataclass(slots=True, frozen=True)
class Report:
    """What was checked, against what, and the verdict on every message."""

    title: str
    target: str
    created_at: datetime
    results: tuple[MessageResult, ...]
    timing: Timing | None = None

    @property
    def failed(self) -> int:
        return sum(not r.passed for r in self.results)

    @property
    def passed(self) -> bool:
        """Every message conforms (and there was at least one)."""
        return bool(self.results) and self.failed == 0


def _violation(v: Violation) -> dict[str, str]:
    return {"path": v.path, "rule": v.rule, "message": v.message, "hint": v.hint}


def _payload_text(payload: bytes | None) -> str | None:
    return None if payload is None else payload.decode("utf-8", errors="replace")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON values."""
    timing = report.timing
    return {
        "title": report.title,
        "target": report.target,
        "created_at": _iso(report.created_at),
        "passed": report.passed,
        "messages": len(report.results),
        "failed": report.failed,
        "results": [
            {
                "source": r.source,
                "topic": r.topic,
                "device": r.device,
                "passed": r.passed,
                "violations": [_violation(v) for v in r.violations],
                "observed_at": _iso(r.observed_at),
                "received_at": _iso(r.received_at),
                "payload": _payload_text(r.payload),
                "entities": list(r.entities),
            }
            for r in report.results
        ],
        "timing": None
        if timing is None
        else {
            "messages": timing.messages,
            "seconds": timing.seconds,
            "rate_per_s": timing.rate_per_s,
            "skew_median_s": timing.skew_median_s,
            "skew_max_s": timing.skew_max_s,
            "duplicates": [
                {"source": d.source, "first": d.first, "why": d.why} for d in timing.duplicates
            ],
            "gaps": [
                {
                    "device": g.device,
                    "after": _iso(g.after),
                    "before": _iso(g.before),
                    "seconds": g.seconds,
                    "median_s": g.median_s,
                }
                for g in timing.gaps
            ],
        },
    }


def to_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2, ensure_ascii=False) + "\n"


def to_junit(report: Report) -> str:
    """One testsuite, one testcase per message; a failure lists every violation."""
    suites = ET.Element("testsuites", name="contesto conformance")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"{report.title}: {report.target}",
        tests=str(len(report.results)),
        failures=str(report.failed),
        errors="0",
        timestamp=_iso(report.created_at) or "",
    )
    for result in report.results:
        case = ET.SubElement(suite, "testcase", classname=report.target, name=result.source)
        if result.passed:
            continue
        first = result.violations[0]
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{first.path}: {first.message}",
            type=first.rule,
        )
        failure.text = "\n".join(_line(v) for v in result.violations)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _line(v: Violation) -> str:
    text = f"{v.path} [{v.rule}] {v.message}"
    return text + (f" (hint: {v.hint})" if v.hint else "")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:70rem}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
.pass{color:#17622b;font-weight:bold}.fail{color:#a4161a;font-weight:bold}
pre{background:#f5f5f5;padding:.5rem;overflow-x:auto;white-space:pre-wrap;margin:0}
details{margin:.2rem 0}.facts td:first-child{font-weight:bold;width:14rem}
"""


def to_html(report: Report) -> str:
    """A page a vendor can send to the city: inline CSS, no external assets, all escaped."""
    e = html.escape
    verdict = (
        '<span class="pass">PASSED</span>'
        if report.passed
        else f'<span class="fail">FAILED</span> ({report.failed} of {len(report.results)})'
    )
    rows = []
    for r in report.results:
        status = '<span class="pass">pass</span>' if r.passed else '<span class="fail">fail</span>'
        problems = "".join(
            f"<tr><td>{e(v.path)}</td><td>{e(v.rule)}</td><td>{e(v.message)}</td>"
            f"<td>{e(v.hint)}</td></tr>"
            for v in r.violations
        )
        detail = ""
        if problems:
            detail += (
                "<table><tr><th>path</th><th>rule</th><th>message</th><th>hint</th></tr>"
                f"{problems}</table>"
            )
        payload = _payload_text(r.payload)
        if payload is not None:
            detail += f"<details><summary>payload</summary><pre>{e(payload)}</pre></details>"
        if r.entities:
            shown = json.dumps(list(r.entities), indent=2, ensure_ascii=False)
            detail += f"<details><summary>NGSI-LD entity</summary><pre>{e(shown)}</pre></details>"
        rows.append(
            f"<tr><td>{e(r.source)}</td><td>{e(r.topic or '')}</td>"
            f"<td>{e(r.device or '')}</td><td>{status}</td><td>{detail}</td></tr>"
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(report.title)}: {e(report.target)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Contesto conformance: {e(report.title)}</h1>",
        '<table class="facts">',
        f"<tr><td>target</td><td>{e(report.target)}</td></tr>",
        f"<tr><td>checked at</td><td>{e(_iso(report.created_at) or '')}</td></tr>",
        f"<tr><td>messages</td><td>{len(report.results)}</td></tr>",
        f"<tr><td>verdict</td><td>{verdict}</td></tr>",
        *_timing_rows(report.timing),
        "</table>",
        "<table><tr><th>message</th><th>topic</th><th>device</th><th>result</th>"
        "<th>details</th></tr>",
        *rows,
        "</table></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _timing_rows(timing: Timing | None) -> list[str]:
    if timing is None:
        return []
    e = html.escape
    facts = timing_lines(timing)
    return [f"<tr><td>{e(name)}</td><td>{e(value)}</td></tr>" for name, value in facts]


def timing_lines(timing: Timing) -> list[tuple[str, str]]:
    """The timing facts as (name, text) pairs, for the console and the HTML page."""

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f} s"

    lines = [
        (
            "message rate",
            "n/a" if timing.rate_per_s is None else f"{timing.rate_per_s:.2f} per second",
        ),
        ("clock skew (median)", seconds(timing.skew_median_s)),
        ("clock skew (max)", seconds(timing.skew_max_s)),
        ("duplicates", str(len(timing.duplicates))),
        ("gaps", str(len(timing.gaps))),
    ]
    lines.extend(
        ("duplicate", f"{d.source} repeats {d.first} ({d.why})") for d in timing.duplicates
    )
    lines.extend(
        (
            "gap",
            f"{g.device}: {g.seconds:.1f} s from {_iso(g.after)} to {_iso(g.before)} "
            f"(median interval {g.median_s:.1f} s)",
        )
        for g in timing.gaps
    )
    return lines
