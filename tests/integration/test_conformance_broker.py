"""The broker conformance suite: our broker passes it; a broken one fails it, clearly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
import typer
from _servers import ThreadedServer
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from conformance_tests._broker_framework import CheckResult, Outcome
from conformance_tests._broker_reports import markdown_line, to_junit_xml
from conformance_tests._broker_runner import CHECKS, GROUPS, SuiteResult, run_suite
from contesto._cli_conformance_broker import broker

pytestmark = pytest.mark.integration

# Checks our broker fails where the spec says otherwise: check id -> clause and why.
# Empty: our broker passes every check. A deviation found later goes here, not into the check.
KNOWN_DEVIATIONS: dict[str, str] = {}


def _failures(result: SuiteResult) -> dict[str, str]:
    return {r.id: r.reason for r in result.results if r.outcome is Outcome.FAIL}


async def test_our_broker_passes_the_whole_suite(broker_url: str) -> None:
    result = await run_suite(broker_url)

    assert [r.id for r in result.results] == [c.id for c in CHECKS]
    failures = _failures(result)
    unexpected = {k: v for k, v in failures.items() if k not in KNOWN_DEVIATIONS}
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert set(failures) == set(KNOWN_DEVIATIONS), "a known deviation is fixed: drop it"
    assert result.counts().not_supported == 0
    assert result.cleanup_problems == ()


async def test_the_suite_leaves_nothing_behind(broker_url: str) -> None:
    result = await run_suite(broker_url, groups=["entity", "batch"], tenant="conformance-clean")

    assert result.ok
    async with httpx.AsyncClient(base_url=broker_url + "/ngsi-ld/v1") as http:
        reply = await http.get(
            "entities",
            params={"idPattern": f"^urn:ngsi-ld:ConformanceProbe:{result.run_id}-.*"},
            headers={"NGSILD-Tenant": "conformance-clean"},
        )
    assert reply.status_code == 200
    assert reply.json() == []


@pytest.mark.parametrize("suffix", ["/ngsi-ld/v1", "/ngsi-ld/v1/", "/"])
async def test_the_api_url_of_the_banner_works_like_the_root(broker_url: str, suffix: str) -> None:
    """The startup banner prints `<root>/ngsi-ld/v1`: given that URL, the suite still probes
    `<root>/ngsi-ld/v1`, not `<root>/ngsi-ld/v1/ngsi-ld/v1`."""
    result = await run_suite(broker_url + suffix, groups=["routing", "jsonld-contexts"])

    assert result.ok, _failures(result)
    assert result.counts().passed == len(result.results) > 0


def _always_empty_list() -> FastAPI:
    """A broker that answers 200 [] to everything: as wrong as a broker can be."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def anything(path: str) -> JSONResponse:
        return JSONResponse([])

    return app


@pytest.fixture(scope="module")
def broken_url() -> Iterator[str]:
    with ThreadedServer(_always_empty_list()) as server:
        yield server.url


async def test_a_broken_broker_fails_with_expected_and_actual(broken_url: str) -> None:
    result = await run_suite(broken_url, groups=["entity", "query", "tenants"])

    assert not result.ok
    assert result.counts().passed == 0
    by_id = {r.id: r for r in result.results}
    create = by_id["entity-create-201"]
    assert create.outcome is Outcome.FAIL
    assert create.clause == "5.6.1; 6.4.3.1"
    assert create.reason.startswith("expected HTTP 201; got HTTP 200 (application/json) []")
    assert "to POST /entities" in create.reason
    missing = by_id["entity-retrieve-404"].reason
    assert "ProblemDetails of type ResourceNotFound" in missing
    assert "HTTP 200" in missing
    assert by_id["tenants-unknown-404"].outcome is Outcome.FAIL


def test_the_command_writes_reports_and_exits_1_on_failures(
    broken_url: str, tmp_path: Path
) -> None:
    app = typer.Typer()
    app.command()(broker)
    reports = {name: tmp_path / name for name in ("r.json", "r.xml", "r.md")}

    outcome = CliRunner().invoke(
        app,
        [broken_url, "--group", "errors", "--json", str(reports["r.json"]),
         "--junit", str(reports["r.xml"]), "--markdown", str(reports["r.md"])],
    )  # fmt: skip

    assert outcome.exit_code == 1, outcome.output
    assert "errors-path-id-400" in outcome.output
    document = json.loads(reports["r.json"].read_text())
    assert document["totals"] == {"checks": 3, "passed": 0, "failed": 3, "notSupported": 0}
    assert ET.parse(reports["r.xml"]).getroot().get("failures") == "3"
    assert reports["r.md"].read_text().startswith("Conformance: 0/3 checks passed (")


def test_an_unknown_group_is_a_usage_error(broken_url: str) -> None:
    app = typer.Typer()
    app.command()(broker)

    outcome = CliRunner().invoke(app, [broken_url, "--group", "subscriptions"])

    assert outcome.exit_code == 2
    assert all(group in outcome.output for group in GROUPS)


def _result(*results: CheckResult) -> SuiteResult:
    return SuiteResult(
        url="http://broker.example:1026",
        tenant="conformance-t",
        run_id="t",
        started_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        duration_s=0.5,
        results=results,
    )


def test_junit_has_a_suite_per_group_and_a_case_per_check() -> None:
    result = _result(
        CheckResult("a-ok", "entity", "5.6.1", "Create", Outcome.PASS, "", 0.1),
        CheckResult("a-bad", "entity", "5.6.6", "Delete", Outcome.FAIL, "expected 204; got 200"),
        CheckResult("t-none", "tenants", "4.14", "Tenants", Outcome.NOT_SUPPORTED, "HTTP 501"),
    )

    root = ET.fromstring(to_junit_xml(result))

    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == ["entity", "tenants"]
    entity = suites["entity"]
    assert (entity.get("tests"), entity.get("failures"), entity.get("skipped")) == ("2", "1", "0")
    cases = entity.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "a-ok: Create (clause 5.6.1)",
        "a-bad: Delete (clause 5.6.6)",
    ]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected 204; got 200"
    assert failure.text == "ETSI GS CIM 009 V1.8 clause 5.6.6: expected 204; got 200"
    skipped = suites["tenants"].find("testcase/skipped")
    assert skipped is not None
    assert skipped.get("message") == "not supported: HTTP 501"


def test_markdown_line() -> None:
    result = _result(CheckResult("a", "entity", "5.6.1", "Create", Outcome.PASS))

    assert markdown_line(result) == (
        "Conformance: 1/1 checks passed (2025-03-01, http://broker.example:1026)"
    )


def test_the_docs_list_every_check_with_its_clause() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "conformance.md").read_text()

    missing = [c.id for c in CHECKS if f"| `{c.id}` | {c.clause} |" not in doc]
    assert not missing
    assert f"Each of its {len(CHECKS)} checks" in doc
