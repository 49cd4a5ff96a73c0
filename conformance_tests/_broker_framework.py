"""The broker conformance framework: checks, their outcomes, and the probe context they run in.

A check is one spec rule of ETSI GS CIM 009 (v1.8) tried against a live broker. It passes
by returning, fails by raising `CheckFailed(expected, actual)` and is not applicable by
raising `NotSupported(reason)` (an optional feature the broker does not offer).
"""

from __future__ import annotations

import enum
import json as jsonlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from conformance_tests._broker_receiver import NotificationReceiver
from ngsild_client import BrokerUnreachable, NgsiLdClient

__all__ = [
    "ERRORS_BASE",
    "Check",
    "CheckFailed",
    "CheckResult",
    "NotSupported",
    "Outcome",
    "ProbeContext",
    "Reply",
    "attribute",
    "entity_ids",
    "expect",
    "expect_ids",
    "expect_problem",
    "expect_status",
    "registrar",
]

ERRORS_BASE = "https://uri.etsi.org/ngsi-ld/errors/"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_SUPPORTED = "not-supported"


class CheckFailed(Exception):
    """The broker answered otherwise than the clause says: what was expected, what came back."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected {expected}; got {actual}")
        self.expected = expected
        self.actual = actual


class NotSupported(Exception):
    """The broker does not offer the optional feature a check needs."""


@dataclass(slots=True, frozen=True)
class Reply:
    """One HTTP answer of the broker, as the checks read it."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: Any
    text: str

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def describe(self) -> str:
        """`HTTP 200 (application/json) [] to GET /entities`: the answer in one line."""
        text = self.text if len(self.text) <= 300 else self.text[:300] + "..."
        kind = f" ({self.media_type})" if self.media_type else ""
        body = f" {text}" if text else ""
        return f"HTTP {self.status}{kind}{body} to {self.method} {self.path}"


CheckFn = Callable[["ProbeContext"], Awaitable[None]]


@dataclass(slots=True, frozen=True)
class Check:
    id: str
    group: str
    clause: str
    title: str
    run: CheckFn = field(repr=False, compare=False)


@dataclass(slots=True, frozen=True)
class CheckResult:
    id: str
    group: str
    clause: str
    title: str
    outcome: Outcome
    reason: str = ""
    duration_s: float = 0.0


def registrar(
    checks: list[Check], group: str
) -> Callable[[str, str, str], Callable[[CheckFn], CheckFn]]:
    """A decorator factory `check(id, clause, title)` adding checks of `group` to `checks`."""

    def check(check_id: str, clause: str, title: str) -> Callable[[CheckFn], CheckFn]:
        def add(run: CheckFn) -> CheckFn:
            checks.append(Check(check_id, group, clause, title, run))
            return run

        return add

    return check


class _Default(enum.Enum):
    TENANT = 0


DEFAULT = _Default.TENANT
Tenant = str | None | _Default


class ProbeContext:
    """The NGSI-LD client on `<URL>/ngsi-ld/v1`, the run's ids and what to clean up afterwards.

    Every entity id is `urn:ngsi-ld:ConformanceProbe:<run>-<n>`, every subscription id
    `urn:ngsi-ld:Subscription:ConformanceProbe:<run>-<n>`, and everything the checks try to
    create is recorded first, so `cleanup()` deletes exactly those, whatever happened.
    `receiver` (when the run has one) is where the broker sends the notifications the
    subscription checks wait for, at most `notify_wait_s` each; `receiver_error` says why
    a run that wanted one has none.
    """

    def __init__(
        self,
        client: NgsiLdClient,
        run_id: str,
        tenant: str | None,
        *,
        receiver: NotificationReceiver | None = None,
        notify_wait_s: float = 10.0,
        receiver_error: str = "",
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.tenant = tenant
        self.receiver = receiver
        self.notify_wait_s = notify_wait_s
        self.receiver_error = receiver_error
        self._counter = 0
        self._entities: list[tuple[str | None, str]] = []
        self._subscriptions: list[str] = []
        self._contexts: list[str] = []

    @property
    def entity_type(self) -> str:
        """The type of this run's entities: unique, so queries by type see only them."""
        return f"ConformanceProbe{self.run_id}"

    @property
    def other_tenant(self) -> str:
        return f"conformance-{self.run_id}-b"

    def new_id(self) -> str:
        self._counter += 1
        return f"urn:ngsi-ld:ConformanceProbe:{self.run_id}-{self._counter}"

    def new_subscription_id(self) -> str:
        self._counter += 1
        return f"urn:ngsi-ld:Subscription:ConformanceProbe:{self.run_id}-{self._counter}"

    def entity(self, entity_id: str | None = None, **attrs: Any) -> dict[str, Any]:
        """A normalized entity of this run's type; keyword values become Properties."""
        body: dict[str, Any] = {"id": entity_id or self.new_id(), "type": self.entity_type}
        for name, value in attrs.items():
            body[name] = value if isinstance(value, dict) else {"type": "Property", "value": value}
        return body

    def track(self, entity_id: str, tenant: Tenant = DEFAULT) -> None:
        self._entities.append((self._tenant(tenant), entity_id))

    def track_subscription(self, subscription_id: str) -> None:
        self._subscriptions.append(subscription_id)

    def track_context(self, path: str) -> None:
        self._contexts.append(path)

    def _tenant(self, tenant: Tenant) -> str | None:
        return self.tenant if tenant is DEFAULT else tenant

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        tenant: Tenant = DEFAULT,
    ) -> Reply:
        sent: dict[str, str] = {"Accept": "application/json"}
        chosen = self._tenant(tenant)
        if chosen is not None:
            sent["NGSILD-Tenant"] = chosen
        if json is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        if json is not None:
            content = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        answer = await self.client.request(
            method, path, params=params, headers=sent, content=content
        )
        text = answer.text
        try:
            body: Any = jsonlib.loads(text) if text else None
        except ValueError:
            body = None
        query = f"?{answer.query}" if answer.query else ""
        return Reply(
            method, "/" + path.lstrip("/") + query, answer.status, answer.headers, body, text
        )

    async def create(self, entity: Mapping[str, Any], *, tenant: Tenant = DEFAULT) -> Reply:
        """POST /entities, the id recorded for clean-up before the request goes out."""
        self.track(str(entity["id"]), tenant)
        return await self.request("POST", "entities", json=dict(entity), tenant=tenant)

    async def create_ok(self, entity: Mapping[str, Any], *, tenant: Tenant = DEFAULT) -> None:
        """Create an entity a check needs; a broker that cannot is a failure of that check."""
        reply = await self.create(entity, tenant=tenant)
        expect_status(reply, 201, what="when creating the entity the check works on")

    async def retrieve(self, entity_id: str, **params: str) -> Reply:
        return await self.request("GET", f"entities/{quote(entity_id, safe='')}", params=params)

    async def cleanup(self) -> list[str]:
        """Delete what the checks created since the last clean-up; problems, never exceptions."""
        problems: list[str] = []
        subscriptions, self._subscriptions = self._subscriptions, []
        entities, self._entities = self._entities, []
        contexts, self._contexts = self._contexts, []
        for subscription_id in dict.fromkeys(subscriptions):  # first: no notice of the rest
            path = f"subscriptions/{quote(subscription_id, safe='')}"
            try:
                reply = await self.request("DELETE", path)
            except BrokerUnreachable as exc:
                problems.append(f"{subscription_id}: {exc!r}")
                continue
            if reply.status not in (204, 404):
                problems.append(f"{subscription_id}: {reply.describe()}")
        for tenant, entity_id in dict.fromkeys(entities):
            try:
                reply = await self.request(
                    "DELETE", f"entities/{quote(entity_id, safe='')}", tenant=tenant
                )
            except BrokerUnreachable as exc:
                problems.append(f"{entity_id}: {exc!r}")
                continue
            if reply.status not in (204, 404):
                problems.append(f"{entity_id}: {reply.describe()}")
        for path in contexts:
            try:
                await self.request("DELETE", path)
            except BrokerUnreachable as exc:
                problems.append(f"{path}: {exc!r}")
        return problems


def expect(condition: bool, expected: str, actual: str) -> None:
    if not condition:
        raise CheckFailed(expected, actual)


def expect_status(reply: Reply, *codes: int, what: str = "") -> None:
    if reply.status not in codes:
        wanted = " or ".join(str(code) for code in codes)
        raise CheckFailed(f"HTTP {wanted}{' ' + what if what else ''}", reply.describe())


def expect_problem(reply: Reply, status: int, *type_names: str) -> dict[str, Any]:
    """`status` with a ProblemDetails body (clause 5.5.3) whose `type` is one of the errors."""
    uris = [ERRORS_BASE + name for name in type_names]
    wanted = f"HTTP {status} ProblemDetails of type {' or '.join(type_names)}"
    if reply.status != status or not isinstance(reply.body, dict):
        raise CheckFailed(wanted, reply.describe())
    if reply.body.get("type") not in uris:
        raise CheckFailed(wanted, reply.describe())
    return reply.body


def entity_ids(reply: Reply) -> list[str]:
    """The ids of a query answer: 200 with a JSON array of entities."""
    expect_status(reply, 200, what="with a JSON array of entities")
    if not isinstance(reply.body, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in reply.body
    ):
        raise CheckFailed("a JSON array of entities", reply.describe())
    return [str(item["id"]) for item in reply.body]


def expect_ids(reply: Reply, expected: Iterable[str]) -> None:
    """A query answer holding exactly the `expected` entities, in any order."""
    wanted = sorted(expected)
    got = sorted(entity_ids(reply))
    if got != wanted:
        raise CheckFailed(f"exactly the entities {wanted}", f"{got} ({reply.describe()})")


def attribute(reply: Reply, name: str) -> Any:
    """An attribute of an entity answer; its absence fails the check."""
    expect_status(reply, 200, what="with the entity")
    if not isinstance(reply.body, dict) or name not in reply.body:
        raise CheckFailed(f"an entity with the attribute {name!r}", reply.describe())
    return reply.body[name]
