"""Checks of subscriptions (clauses 5.8, 5.2.12-5.2.15, 6.10-6.11) and of the notifications
they send (5.3.1, 5.11), received by the suite's own endpoint (`_broker_receiver.py`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from conformance_tests._broker_framework import (
    JSONLD_CONTEXT_REL,
    Check,
    CheckFailed,
    ProbeContext,
    Reply,
    expect,
    expect_problem,
    expect_status,
    registrar,
)
from conformance_tests._broker_receiver import NotificationReceiver, ReceivedRequest

__all__ = ["NOTIFICATION_CHECKS", "SUBSCRIPTION_CHECKS"]

SUBSCRIPTION_CHECKS: list[Check] = []
NOTIFICATION_CHECKS: list[Check] = []
subscription_check = registrar(SUBSCRIPTION_CHECKS, "subscription")
notification_check = registrar(NOTIFICATION_CHECKS, "notification")

# Where the subscriptions no entity ever matches point: a reserved name (RFC 2606).
NOWHERE = "http://conformance-probe.example.org/notify"
# How long a check waits to be sure a notification does not come.
ABSENCE_WAIT_S = 2.0
FIX_REACH = (
    "if the broker cannot reach this machine, pass --notify-host (and --notify-port) with "
    "an address of it the broker can reach; for a slow broker, raise --notify-wait-s"
)


def _path(subscription_id: str) -> str:
    return f"subscriptions/{quote(subscription_id, safe='')}"


def _probe_type(ctx: ProbeContext) -> str:
    """A type of this check alone, so the subscription sees no other check's entities."""
    return f"{ctx.entity_type}T{ctx.new_id().rsplit('-', 1)[1]}"


def _subscription(
    ctx: ProbeContext, entity_type: str, uri: str = NOWHERE, **members: Any
) -> dict[str, Any]:
    """A Subscription to the entities of `entity_type`, notifying `uri`, with its own id."""
    body: dict[str, Any] = {
        "id": ctx.new_subscription_id(),
        "type": "Subscription",
        "entities": [{"type": entity_type}],
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
    }
    return body | members


async def _create(ctx: ProbeContext, body: dict[str, Any]) -> Reply:
    """POST /subscriptions, the id recorded for clean-up before the request goes out."""
    if isinstance(body.get("id"), str):
        ctx.track_subscription(body["id"])
    return await ctx.request("POST", "subscriptions", json=body)


async def _create_ok(ctx: ProbeContext, body: dict[str, Any]) -> str:
    reply = await _create(ctx, body)
    expect_status(reply, 201, what="when creating the subscription the check works on")
    return str(body["id"])


def _subscription_body(reply: Reply, subscription_id: str) -> dict[str, Any]:
    expect_status(reply, 200, what=f"with the Subscription {subscription_id}")
    expect(isinstance(reply.body, dict), "a Subscription as a JSON object", reply.describe())
    body: dict[str, Any] = reply.body
    return body


def _endpoint_uri(body: dict[str, Any]) -> Any:
    notification = body.get("notification")
    endpoint = notification.get("endpoint") if isinstance(notification, dict) else None
    return endpoint.get("uri") if isinstance(endpoint, dict) else None


@subscription_check(
    "subscription-create-201", "5.8.1; 6.10.3.1", "Create Subscription answers 201 with Location"
)
async def create_201(ctx: ProbeContext) -> None:
    body = _subscription(ctx, _probe_type(ctx))
    reply = await _create(ctx, body)
    expect_status(reply, 201)
    location = unquote(reply.headers.get("location", ""))
    expect(
        location.endswith(f"/ngsi-ld/v1/subscriptions/{body['id']}"),
        f"a Location header ending in /ngsi-ld/v1/subscriptions/{body['id']}",
        f"Location: {location or '(none)'}",
    )


@subscription_check(
    "subscription-retrieve", "5.8.3; 6.11.3.1; 5.2.12", "Retrieve gives the Subscription, active"
)
async def retrieve(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id = await _create_ok(ctx, _subscription(ctx, entity_type))
    reply = await ctx.request("GET", _path(subscription_id))
    body = _subscription_body(reply, subscription_id)
    expect(
        body.get("id") == subscription_id and body.get("type") == "Subscription",
        f'id {subscription_id} and type "Subscription"',
        reply.describe(),
    )
    entities = body.get("entities")
    expect(
        isinstance(entities, list)
        and any(isinstance(e, dict) and e.get("type") == entity_type for e in entities),
        f'entities [{{"type": "{entity_type}"}}] as created',
        reply.describe(),
    )
    expect(
        _endpoint_uri(body) == NOWHERE,
        f"notification.endpoint.uri {NOWHERE} as created",
        reply.describe(),
    )
    expect(
        body.get("status") == "active",
        'status "active" for a subscription that is neither paused nor expired',
        reply.describe(),
    )


@subscription_check(
    "subscription-no-notification-400", "5.8.1; 5.2.12; 6.10.3.1", "No notification is 400"
)
async def no_notification(ctx: ProbeContext) -> None:
    body = _subscription(ctx, _probe_type(ctx))
    del body["notification"]
    expect_problem(await _create(ctx, body), 400, "BadRequestData")


@subscription_check(
    "subscription-no-entities-400",
    "5.8.1; 5.2.12; 6.10.3.1",
    "Neither entities nor watchedAttributes is 400",
)
async def no_entities(ctx: ProbeContext) -> None:
    body = _subscription(ctx, _probe_type(ctx))
    del body["entities"]
    expect_problem(await _create(ctx, body), 400, "BadRequestData")


@subscription_check(
    "subscription-endpoint-not-uri-400",
    "5.8.1; 5.2.15; 6.10.3.1",
    "An endpoint uri that is no URI is 400",
)
async def endpoint_not_uri(ctx: ProbeContext) -> None:
    body = _subscription(ctx, _probe_type(ctx), uri=f"not a uri {ctx.run_id}")
    expect_problem(await _create(ctx, body), 400, "BadRequestData")


@subscription_check(
    "subscription-retrieve-404", "5.8.3; 6.11.3.1", "Retrieving an unknown subscription is 404"
)
async def retrieve_unknown(ctx: ProbeContext) -> None:
    reply = await ctx.request("GET", _path(ctx.new_subscription_id()))
    expect_problem(reply, 404, "ResourceNotFound")


@subscription_check(
    "subscription-create-duplicate-409", "5.8.1; 6.10.3.1", "Creating an existing id is 409"
)
async def create_duplicate(ctx: ProbeContext) -> None:
    body = _subscription(ctx, _probe_type(ctx))
    await _create_ok(ctx, body)
    expect_problem(await _create(ctx, body), 409, "AlreadyExists")


def _subscription_ids(reply: Reply) -> list[str]:
    expect_status(reply, 200, what="with a JSON array of Subscriptions")
    expect(
        isinstance(reply.body, list)
        and all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in reply.body),
        "a JSON array of Subscriptions",
        reply.describe(),
    )
    return [str(item["id"]) for item in reply.body]


@subscription_check(
    "subscription-query-paging", "5.8.4; 6.10.3.2; 5.5.9", "Query Subscriptions lists and pages"
)
async def query_paging(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    mine = {await _create_ok(ctx, _subscription(ctx, entity_type)) for _ in range(2)}
    found: set[str] = set()
    page_size, pages = 100, 20  # a tenant of the suite's own holds just these two
    for page in range(pages):
        params = {"limit": str(page_size), "offset": str(page * page_size)}
        ids = _subscription_ids(await ctx.request("GET", "subscriptions", params=params))
        found.update(ids)
        if mine <= found or len(ids) < page_size:
            break
    expect(
        mine <= found,
        f"the subscriptions {sorted(mine)} among those listed (read {pages} pages at most)",
        f"not listed: {sorted(mine - found)}",
    )
    first = await ctx.request("GET", "subscriptions", params={"limit": "1", "offset": "0"})
    second = await ctx.request("GET", "subscriptions", params={"limit": "1", "offset": "1"})
    first_ids, second_ids = _subscription_ids(first), _subscription_ids(second)
    expect(
        len(first_ids) == 1 and len(second_ids) == 1 and first_ids != second_ids,
        "limit=1 giving one subscription, and offset=1 the next one",
        f"{first.describe()}; {second.describe()}",
    )


@subscription_check(
    "subscription-update-paused", "5.8.2; 6.11.3.2; 5.2.12", "isActive false makes it paused"
)
async def update_paused(ctx: ProbeContext) -> None:
    subscription_id = await _create_ok(ctx, _subscription(ctx, _probe_type(ctx)))
    reply = await ctx.request("PATCH", _path(subscription_id), json={"isActive": False})
    expect_status(reply, 204)
    after = await ctx.request("GET", _path(subscription_id))
    body = _subscription_body(after, subscription_id)
    expect(
        body.get("status") == "paused" and body.get("isActive", False) is False,
        'status "paused" (and isActive false) after the update',
        after.describe(),
    )


@subscription_check(
    "subscription-delete-204", "5.8.5; 6.11.3.3", "Delete Subscription answers 204, then it is gone"
)
async def delete(ctx: ProbeContext) -> None:
    subscription_id = await _create_ok(ctx, _subscription(ctx, _probe_type(ctx)))
    expect_status(await ctx.request("DELETE", _path(subscription_id)), 204)
    expect_problem(await ctx.request("GET", _path(subscription_id)), 404, "ResourceNotFound")


# Notifications: a subscription to a type of the check alone, pointing at the receiver.


def _receiver(ctx: ProbeContext) -> NotificationReceiver:
    if ctx.receiver is None:
        raise CheckFailed(
            "the suite's notification receiver listening (it needs --notify-host, an address "
            "of this machine, and a free --notify-port)",
            ctx.receiver_error or "no receiver in this run",
        )
    return ctx.receiver


async def _subscribe(
    ctx: ProbeContext, entity_type: str, *, accept: str = "application/json", **members: Any
) -> tuple[str, str]:
    """A subscription notifying the receiver at a path of its own: (its id, that path)."""
    receiver = _receiver(ctx)
    path = f"/notify/{ctx.run_id}/{ctx.new_id().rsplit('-', 1)[1]}"
    notification = members.pop("notification", {})
    body = _subscription(ctx, entity_type, **members)
    body["notification"] = notification | {
        "endpoint": {"uri": receiver.url + path, "accept": accept}
    }
    reply = await _create(ctx, body)
    expect_status(
        reply,
        201,
        what=(
            f"for a subscription notifying the suite at {receiver.url + path} (if the broker "
            "refuses that address, pass --notify-host with one it accepts and can reach)"
        ),
    )
    return str(body["id"]), path


def _posted_to(
    path: str, wanted: Callable[[ReceivedRequest], bool] | None = None
) -> Callable[[ReceivedRequest], bool]:
    def test(request: ReceivedRequest) -> bool:
        return (
            request.method == "POST"
            and request.path == path
            and (wanted is None or wanted(request))
        )

    return test


def _entity_in(request: ReceivedRequest, entity_id: str) -> dict[str, Any] | None:
    body = request.json
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    for entity in data:
        if isinstance(entity, dict) and entity.get("id") == entity_id:
            return entity
    return None


async def _notification(
    ctx: ProbeContext,
    path: str,
    what: str,
    wanted: Callable[[ReceivedRequest], bool] | None = None,
) -> ReceivedRequest:
    """The first POST to `path` that is `wanted`, waiting at most `notify_wait_s`."""
    receiver = _receiver(ctx)
    got = await receiver.wait_for(_posted_to(path, wanted), ctx.notify_wait_s)
    if got is not None:
        return got
    others = [r for r in receiver.received if r.path == path]
    raise CheckFailed(
        f"a POST to {receiver.url}{path} with {what} within {ctx.notify_wait_s:g} s "
        f"(clause 5.11; {FIX_REACH})",
        f"{len(others)} other request(s), the last {others[-1].describe()}"
        if others
        else f"nothing within {ctx.notify_wait_s:g} s",
    )


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _expect_notification(
    request: ReceivedRequest, subscription_id: str, entity_id: str
) -> dict[str, Any]:
    """A Notification (clause 5.3.1) of `subscription_id` holding `entity_id`: that entity."""
    body = request.json
    wanted = (
        f'a Notification {{"id": URI, "type": "Notification", "subscriptionId": '
        f'"{subscription_id}", "notifiedAt": DateTime, "data": [{{"id": "{entity_id}", ...}}]}}'
    )
    expect(isinstance(body, dict), wanted, request.describe())
    expect(
        isinstance(body.get("id"), str)
        and ":" in body["id"]
        and body.get("type") == "Notification"
        and body.get("subscriptionId") == subscription_id
        and _is_datetime(body.get("notifiedAt")),
        wanted,
        request.describe(),
    )
    entity = _entity_in(request, entity_id)
    if entity is None:
        raise CheckFailed(wanted, request.describe())
    return entity


def _value_of(entity: dict[str, Any], name: str) -> Any:
    attribute = entity.get(name)
    return attribute.get("value") if isinstance(attribute, dict) else attribute


def _holding(
    entity_id: str, name: str | None = None, value: Any = None
) -> Callable[[ReceivedRequest], bool]:
    """Whether a notification holds `entity_id` (with `name` at `value`, when given)."""

    def test(request: ReceivedRequest) -> bool:
        entity = _entity_in(request, entity_id)
        return entity is not None and (name is None or _value_of(entity, name) == value)

    return test


def _typed(ctx: ProbeContext, entity_type: str, entity_id: str, **attrs: Any) -> dict[str, Any]:
    return ctx.entity(entity_id, **attrs) | {"type": entity_type}


@notification_check(
    "notification-entity-created", "5.8.1; 5.11; 5.3.1", "Creating a matching entity notifies"
)
async def on_create(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(ctx, entity_type)
    entity_id = ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, entity_id, temperature=21))
    got = await _notification(ctx, path, f"a Notification holding {entity_id}")
    _expect_notification(got, subscription_id, entity_id)


@notification_check(
    "notification-attribute-updated", "5.8.1; 5.11; 5.3.1", "An update notifies its new value"
)
async def on_update(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(ctx, entity_type)
    entity_id = ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, entity_id, temperature=21))
    body = {"temperature": {"type": "Property", "value": 30}}
    reply = await ctx.request("PATCH", f"entities/{quote(entity_id, safe='')}/attrs", json=body)
    expect_status(reply, 204, what="updating the attribute the subscription watches")
    got = await _notification(
        ctx,
        path,
        f"a Notification holding {entity_id} with temperature 30 after the update",
        _holding(entity_id, "temperature", 30),
    )
    _expect_notification(got, subscription_id, entity_id)


@notification_check(
    "notification-format-keyvalues", "5.2.14; 5.3.1; 5.11", "format keyValues sends bare values"
)
async def format_key_values(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(ctx, entity_type, notification={"format": "keyValues"})
    entity_id = ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, entity_id, temperature=21))
    got = await _notification(ctx, path, f"a Notification holding {entity_id}")
    entity = _expect_notification(got, subscription_id, entity_id)
    expect(
        entity.get("temperature") == 21,
        "data[0].temperature as its bare value 21 (keyValues)",
        got.describe(),
    )


@notification_check(
    "notification-format-normalized", "5.2.14; 5.3.1; 5.11", "format normalized sends Properties"
)
async def format_normalized(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(
        ctx, entity_type, notification={"format": "normalized"}
    )
    entity_id = ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, entity_id, temperature=21))
    got = await _notification(ctx, path, f"a Notification holding {entity_id}")
    entity = _expect_notification(got, subscription_id, entity_id)
    temperature = entity.get("temperature")
    expect(
        isinstance(temperature, dict)
        and temperature.get("type") == "Property"
        and temperature.get("value") == 21,
        'data[0].temperature {"type": "Property", "value": 21} (normalized)',
        got.describe(),
    )


@notification_check(
    "notification-accept-ldjson", "5.2.15; 5.3.1; 5.11", "accept ld+json puts @context in body"
)
async def accept_ld_json(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(ctx, entity_type, accept="application/ld+json")
    entity_id = ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, entity_id, temperature=21))
    got = await _notification(ctx, path, f"a Notification holding {entity_id}")
    _expect_notification(got, subscription_id, entity_id)
    expect(
        got.media_type == "application/ld+json" and "@context" in got.json,
        "Content-Type application/ld+json and an @context member in the Notification",
        got.describe(),
    )


@notification_check(
    "notification-accept-json-link", "5.2.15; 5.3.1; 5.11", "accept json gives the Link header"
)
async def accept_json_link(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(ctx, entity_type, accept="application/json")
    entity_id = ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, entity_id, temperature=21))
    got = await _notification(ctx, path, f"a Notification holding {entity_id}")
    _expect_notification(got, subscription_id, entity_id)
    link = got.headers.get("link", "")
    expect(
        got.media_type == "application/json"
        and "@context" not in got.json
        and JSONLD_CONTEXT_REL in link,
        f'application/json without @context, and a Link header rel="{JSONLD_CONTEXT_REL}"',
        f"Link: {link or '(none)'}; {got.describe()}",
    )


@notification_check("notification-q-filter", "5.8.1; 5.11; 4.9", "q decides which entities notify")
async def q_filter(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    subscription_id, path = await _subscribe(ctx, entity_type, q="temperature>40")
    cold, hot = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(_typed(ctx, entity_type, cold, temperature=20))
    await ctx.create_ok(_typed(ctx, entity_type, hot, temperature=45))
    got = await _notification(
        ctx, path, f"a Notification holding {hot} (temperature 45 > 40)", _holding(hot)
    )
    _expect_notification(got, subscription_id, hot)
    receiver = _receiver(ctx)
    wrong = await receiver.wait_for(_posted_to(path, _holding(cold)), ABSENCE_WAIT_S)
    expect(
        wrong is None,
        f"no Notification holding {cold} (temperature 20 fails q=temperature>40), "
        f"waited {ABSENCE_WAIT_S:g} s",
        wrong.describe() if wrong is not None else "",
    )


@notification_check(
    "notification-linked-q", "5.8.1; 5.11; 4.9; 4.5.23", "A q through a Relationship filters"
)
async def linked_q_filter(ctx: ProbeContext) -> None:
    entity_type = _probe_type(ctx)
    operator, stranger = ctx.new_id(), ctx.new_id()
    await ctx.create_ok(ctx.entity(operator, name="operator"))
    await ctx.create_ok(ctx.entity(stranger, name="stranger"))
    subscription_id, path = await _subscribe(ctx, entity_type, q='managedBy{name}=="operator"')
    ours, theirs = ctx.new_id(), ctx.new_id()
    for entity_id, target in ((theirs, stranger), (ours, operator)):
        managed_by = {"type": "Relationship", "object": target}
        await ctx.create_ok(_typed(ctx, entity_type, entity_id, managedBy=managed_by))
    got = await _notification(
        ctx, path, f"a Notification holding {ours} (managedBy {operator})", _holding(ours)
    )
    _expect_notification(got, subscription_id, ours)
    receiver = _receiver(ctx)
    wrong = await receiver.wait_for(_posted_to(path, _holding(theirs)), ABSENCE_WAIT_S)
    expect(
        wrong is None,
        f"no Notification holding {theirs}, whose managedBy {stranger} is not named "
        f"operator, waited {ABSENCE_WAIT_S:g} s",
        wrong.describe() if wrong is not None else "",
    )
