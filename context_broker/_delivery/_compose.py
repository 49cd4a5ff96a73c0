"""A subscription's notification as a queue record: the endpoint, the headers the endpoint
receives (the notification's own and its receiverInfo) and the rendered body. Shared by the
change sink (`_sink.py`) and the periodic sweep (`_periodic.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from context_broker._delivery._queue import Claim, queue_record
from context_broker._subscriptions._notification import Notification

Document = dict[str, Any]


def notification_record(
    tenant: str | None,
    subscription: Document,
    notification: Notification,
    now: datetime,
    claim: Claim | None = None,
) -> Document:
    """The queue record that sends `notification` to the subscription's endpoint (held
    under `claim` when it is handed to a notifier at once)."""
    endpoint = subscription["notification"]["endpoint"]
    headers = dict(notification.headers)
    for pair in endpoint.get("receiverInfo", []):
        headers[pair["key"]] = pair["value"]
    notifier = {pair["key"]: pair["value"] for pair in endpoint.get("notifierInfo", [])}
    body = orjson.dumps(notification.body)
    subscription_id = str(subscription["_id"])
    return queue_record(
        tenant, subscription_id, endpoint["uri"], headers, body, notifier, now, claim
    )
