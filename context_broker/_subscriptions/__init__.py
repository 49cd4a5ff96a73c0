"""Subscriptions (ETSI GS CIM 009 clauses 5.8, 5.11): their API, matching and notifications.

`_model` reads and renders Subscriptions, `_matching` finds the subscriptions a change
notifies through an index by type and watched attribute, `_notification` builds the
Notification documents, `_changes` is the seam the broker's writes report through, and
`_store` keeps each tenant's subscriptions in its own database.
"""

from context_broker._subscriptions._changes import NO_CHANGES, ChangeSink, EntityChange
from context_broker._subscriptions._live import LiveSubscriptions
from context_broker._subscriptions._matching import Change, Match, SubscriptionIndex
from context_broker._subscriptions._model import (
    parse_subscription,
    patch_subscription,
    render_subscription,
    subscription_status,
)
from context_broker._subscriptions._notification import Notification, build_notification
from context_broker._subscriptions._service import SubscriptionPage, Subscriptions

__all__ = [
    "NO_CHANGES",
    "Change",
    "ChangeSink",
    "EntityChange",
    "LiveSubscriptions",
    "Match",
    "Notification",
    "SubscriptionIndex",
    "SubscriptionPage",
    "Subscriptions",
    "build_notification",
    "parse_subscription",
    "patch_subscription",
    "render_subscription",
    "subscription_status",
]
