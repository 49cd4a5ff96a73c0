"""Run the broker conformance checks one at a time on `<URL>/ngsi-ld/v1`, cleaning up after each."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from conformance_tests._broker_checks_batch import BATCH_CHECKS
from conformance_tests._broker_checks_entities import ATTRIBUTE_CHECKS, ENTITY_CHECKS
from conformance_tests._broker_checks_http import CONTEXT_CHECKS, ERROR_CHECKS, TENANT_CHECKS
from conformance_tests._broker_checks_lifecycle import LIFECYCLE_CHECKS, LINKED_CHECKS
from conformance_tests._broker_checks_payloads import PAYLOAD_CHECKS, UPDATE_CHECKS
from conformance_tests._broker_checks_query import QUERY_CHECKS
from conformance_tests._broker_checks_retrieve import RETRIEVE_CHECKS
from conformance_tests._broker_checks_routing import CONTEXT_API_CHECKS, ROUTING_CHECKS
from conformance_tests._broker_checks_subscriptions import (
    NOTIFICATION_CHECKS,
    SUBSCRIPTION_CHECKS,
)
from conformance_tests._broker_framework import (
    Check,
    CheckFailed,
    CheckResult,
    NotSupported,
    Outcome,
    ProbeContext,
)
from conformance_tests._broker_receiver import NotificationReceiver
from ngsild_client import BrokerUnreachable, Endpoint, HttpAdapter, NgsiLdClient

__all__ = [
    "CHECKS",
    "GROUPS",
    "GroupCounts",
    "SuiteResult",
    "api_url",
    "run_suite",
    "select_checks",
]

CHECKS: tuple[Check, ...] = (
    *ENTITY_CHECKS,
    *ATTRIBUTE_CHECKS,
    *BATCH_CHECKS,
    *PAYLOAD_CHECKS,
    *UPDATE_CHECKS,
    *QUERY_CHECKS,
    *RETRIEVE_CHECKS,
    *CONTEXT_CHECKS,
    *ERROR_CHECKS,
    *TENANT_CHECKS,
    *ROUTING_CHECKS,
    *CONTEXT_API_CHECKS,
    *LINKED_CHECKS,
    *LIFECYCLE_CHECKS,
    *SUBSCRIPTION_CHECKS,
    *NOTIFICATION_CHECKS,
)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(check.group for check in CHECKS))
API_PATH = "/ngsi-ld/v1/"
NOTIFICATION_GROUP = "notification"

Progress = Callable[[Check, CheckResult | None], None]


@dataclass(slots=True, frozen=True)
class GroupCounts:
    passed: int = 0
    failed: int = 0
    not_supported: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.not_supported


@dataclass(slots=True, frozen=True)
class SuiteResult:
    """What one run found: every check's result, in run order, and clean-up trouble."""

    url: str
    tenant: str | None
    run_id: str
    started_at: datetime
    duration_s: float
    results: tuple[CheckResult, ...]
    cleanup_problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(result.outcome is Outcome.FAIL for result in self.results)

    def groups(self) -> list[str]:
        return list(dict.fromkeys(result.group for result in self.results))

    def counts(self, group: str | None = None) -> GroupCounts:
        chosen = [r for r in self.results if group is None or r.group == group]
        return GroupCounts(
            passed=sum(r.outcome is Outcome.PASS for r in chosen),
            failed=sum(r.outcome is Outcome.FAIL for r in chosen),
            not_supported=sum(r.outcome is Outcome.NOT_SUPPORTED for r in chosen),
        )


def select_checks(groups: Iterable[str] | None = None) -> list[Check]:
    """The checks of `groups` (all when empty) in suite order; ValueError on an unknown group."""
    wanted = list(groups or [])
    unknown = [group for group in wanted if group not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {', '.join(unknown)}; groups: {', '.join(GROUPS)}")
    return [check for check in CHECKS if not wanted or check.group in wanted]


def api_url(url: str) -> str:
    """The NGSI-LD API URL of a broker named by its root (`http://host:1026`) or by the API
    URL itself (`http://host:1026/ngsi-ld/v1`, as the broker's startup banner prints it)."""
    root = url.rstrip("/")
    if root.endswith(API_PATH.rstrip("/")):
        root = root[: -len(API_PATH.rstrip("/"))]
    return root + API_PATH


async def _run_one(check: Check, ctx: ProbeContext) -> CheckResult:
    start = time.monotonic()
    outcome, reason = Outcome.PASS, ""
    try:
        await check.run(ctx)
    except CheckFailed as exc:
        outcome, reason = Outcome.FAIL, str(exc)
    except NotSupported as exc:
        outcome, reason = Outcome.NOT_SUPPORTED, str(exc)
    except BrokerUnreachable as exc:
        outcome, reason = Outcome.FAIL, f"expected an HTTP answer; got {exc!r}"
    except Exception as exc:  # an answer of a shape the check could not read is a failure
        outcome, reason = Outcome.FAIL, f"expected an answer of the spec's shape; got {exc!r}"
    duration = round(time.monotonic() - start, 4)
    return CheckResult(check.id, check.group, check.clause, check.title, outcome, reason, duration)


async def run_suite(
    url: str,
    *,
    tenant: str | None = None,
    use_tenant: bool = True,
    token: str | None = None,
    groups: Sequence[str] | None = None,
    progress: Progress | None = None,
    timeout_s: float = 30.0,
    run_id: str | None = None,
    notify_host: str = "127.0.0.1",
    notify_port: int = 0,
    notify_wait_s: float = 10.0,
) -> SuiteResult:
    """Run the checks of `groups` (all by default) against the broker at `url`, one at a time.

    Entities go to tenant `tenant` (default `conformance-<run>`), or to the default tenant
    with `use_tenant=False`. `progress(check, None)` is called before a check and
    `progress(check, result)` after it. Everything the checks created is deleted. When
    notification checks run, the suite listens on `notify_host:notify_port` (0: any free
    port) for the broker's notifications, waiting `notify_wait_s` at most for each.
    """
    checks = select_checks(groups)
    async with contextlib.AsyncExitStack() as stack:
        receiver: NotificationReceiver | None = None
        receiver_error = ""
        if any(check.group == NOTIFICATION_GROUP for check in checks):
            try:
                receiver = await stack.enter_async_context(
                    NotificationReceiver(notify_host, notify_port)
                )
            except OSError as exc:
                receiver_error = f"cannot listen on {notify_host}:{notify_port}: {exc}"
        return await _run_checks(
            url,
            checks,
            tenant=tenant,
            use_tenant=use_tenant,
            token=token,
            progress=progress,
            timeout_s=timeout_s,
            run_id=run_id,
            receiver=receiver,
            receiver_error=receiver_error,
            notify_wait_s=notify_wait_s,
        )


async def _run_checks(
    url: str,
    checks: list[Check],
    *,
    tenant: str | None,
    use_tenant: bool,
    token: str | None,
    progress: Progress | None,
    timeout_s: float,
    run_id: str | None,
    receiver: NotificationReceiver | None,
    receiver_error: str,
    notify_wait_s: float,
) -> SuiteResult:
    run = run_id or secrets.token_hex(4)
    chosen_tenant = (tenant or f"conformance-{run}") if use_tenant else None
    endpoint = Endpoint(api_url(url), token=token)
    started_at = datetime.now(UTC)
    start = time.monotonic()
    results: list[CheckResult] = []
    problems: list[str] = []
    async with HttpAdapter(timeout_s=timeout_s) as http:
        ctx = ProbeContext(
            NgsiLdClient(http, endpoint),
            run,
            chosen_tenant,
            receiver=receiver,
            notify_wait_s=notify_wait_s,
            receiver_error=receiver_error,
        )
        # The anchor makes the tenant exist, so reads that come first see it (clause 5.5.10).
        anchor = {"id": f"urn:ngsi-ld:ConformanceProbe:{run}-0", "type": ctx.entity_type + "Anchor"}
        try:
            with contextlib.suppress(BrokerUnreachable):  # then each check reports it
                await ctx.request("POST", "entities", json=anchor)
            for check in checks:
                if progress is not None:
                    progress(check, None)
                try:
                    result = await _run_one(check, ctx)
                finally:
                    problems.extend(await _safe_cleanup(ctx))
                results.append(result)
                if progress is not None:
                    progress(check, result)
        finally:
            ctx.track(str(anchor["id"]))
            problems.extend(await _safe_cleanup(ctx))
    return SuiteResult(
        url=url,
        tenant=chosen_tenant,
        run_id=run,
        started_at=started_at,
        duration_s=round(time.monotonic() - start, 3),
        results=tuple(results),
        cleanup_problems=tuple(problems),
    )


async def _safe_cleanup(ctx: ProbeContext) -> list[str]:
    try:
        return await ctx.cleanup()
    except Exception as exc:  # clean-up must never hide the results
        return [f"clean-up failed: {exc!r}"]
