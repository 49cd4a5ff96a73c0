"""A subscription's notification as the queue holds it: the endpoint, the headers the
endpoint receives (the notification's own and its receiverInfo) and the rendered body.
Shared by the change sink (`_sink.py`, through `_parcels.py`) and the periodic sweep
(`_periodic.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from context_broker._delivery._queue import notification_entry, parcel_record
from context_broker._subscriptions._notification import Notification

Document = dict[str, Any]


def notification_notice(
    tenant: str | None, subscription: Document, notification: Notification
) -> Document:
    """`notification` to the subscription's endpoint: a queue record's entry
    (`notification_entry`) with the tenant and the endpoint it goes to."""
    endpoint = subscription["notification"]["endpoint"]
    headers = dict(notification.headers)
    for pair in endpoint.get("receiverInfo", []):
        headers[pair["key"]] = pair["value"]
    notifier = {pair["key"]: pair["value"] for pair in endpoint.get("notifierInfo", [])}
    body = orjson.dumps(notification.body)
    entry = notification_entry(str(subscription["_id"]), headers, body, notifier)
    return {"tenant": tenant, "endpoint": endpoint["uri"], **entry}


def notification_record(
    tenant: str | None, subscription: Document, notification: Notification, now: datetime
) -> Document:
    """The queue record that sends `notification` alone to the subscription's endpoint."""
    notice = notification_notice(tenant, subscription, notification)
    entry = {key: value for key, value in notice.items() if key not in _WHERE}
    return parcel_record(tenant, notice["endpoint"], [entry], now)


_WHERE = ("tenant", "endpoint")
