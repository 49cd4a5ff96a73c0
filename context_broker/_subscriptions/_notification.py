"""The Notification document a subscription sends (clause 5.3.1), built from stored entities.

Pure: the subscription's @context comes in as a term map, resolved by the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from context_broker._attributes import VALUE_MEMBER, RenderOptions, parse_lang
from context_broker._entities import geometry_of, render_entity
from context_broker._jsonld import NGSI_LD_CORE_CONTEXT_URL, TermMap
from context_broker._names import encode_field
from context_broker._subscriptions._model import Document
from context_broker._time import format_datetime

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_GEO_PROPERTY = "https://uri.etsi.org/ngsi-ld/location"


@dataclass(slots=True, frozen=True)
class Notification:
    """A notification ready to send: its body and the headers its `accept` asks for."""

    body: dict[str, Any]
    media_type: str
    headers: dict[str, str]


def data_shape(subscription: Document) -> tuple[Any, ...]:
    """What a notification's `data` depends on besides the entities and the @context:
    subscriptions of one shape notified of the same entities share it (`notification_data`)."""
    params = subscription["notification"]
    attributes = params.get("attributes")
    return (
        params["format"],
        params["sysAttrs"],
        params["showChanges"],
        params["endpoint"].get("accept", "application/json"),
        subscription.get("lang"),
        None if attributes is None else tuple(attributes),
    )


def build_notification(
    subscription: Document,
    entities: Sequence[tuple[Document | None, Document]],
    terms: TermMap,
    now: datetime,
    notification_id: str | None = None,
    data: Any = None,
) -> Notification:
    """The Notification of `subscription` for entities given as (before, after) stored
    documents (`before` None when unknown or new), in the subscription's format, with its
    attributes filter, sysAttrs, showChanges and lang; `data` when already rendered for a
    subscription of the same shape (`data_shape`), else rendered here."""
    accept = subscription["notification"]["endpoint"].get("accept", "application/json")
    if data is None:
        data = notification_data(subscription, entities, terms)
    body: dict[str, Any] = {
        "id": notification_id or f"urn:ngsi-ld:Notification:{uuid.uuid4().hex}",
        "type": "Notification",
        "subscriptionId": subscription["_id"],
        "notifiedAt": format_datetime(now),
        "data": data,
    }
    context = terms.response_context
    if accept == "application/ld+json":
        body["@context"] = context
        return Notification(body, accept, {"Content-Type": accept})
    url = context if isinstance(context, str) else NGSI_LD_CORE_CONTEXT_URL
    link = f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    return Notification(body, accept, {"Content-Type": accept, "Link": link})


def notification_data(
    subscription: Document,
    entities: Sequence[tuple[Document | None, Document]],
    terms: TermMap,
) -> Any:
    """A Notification's `data`: the entities as the subscription shows them (an array, or
    a FeatureCollection for GeoJSON)."""
    params = subscription["notification"]
    accept = params["endpoint"].get("accept", "application/json")
    lang = subscription.get("lang")
    options = RenderOptions(
        format=params["format"],
        sys_attrs=params["sysAttrs"],
        lang=parse_lang(lang) if lang is not None else None,
    )
    shown = frozenset(params["attributes"]) if "attributes" in params else None
    rendered = [
        _entity(before, after, terms, options, shown, show_changes=params["showChanges"])
        for before, after in entities
    ]
    data: Any = rendered
    if accept == "application/geo+json":
        data = {
            "type": "FeatureCollection",
            "features": [
                {
                    "id": body.pop("id"),
                    "type": "Feature",
                    "geometry": geometry_of(after, _GEO_PROPERTY),
                    "properties": body,
                }
                for body, (_, after) in zip(rendered, entities, strict=True)
            ],
        }
    return data


def _entity(
    before: Document | None,
    after: Document,
    terms: TermMap,
    options: RenderOptions,
    shown: frozenset[str] | None,
    *,
    show_changes: bool,
) -> dict[str, Any]:
    body = render_entity(after, terms, options, shown)
    if not show_changes or before is None or options.format == "keyValues":
        return body
    for name in after["an"]:
        if shown is not None and name not in shown:
            continue
        field = encode_field(name)
        old = before.get("attrs", {}).get(field)
        new = after.get("attrs", {}).get(field)
        if old is None or new is None or old == new:
            continue
        member = VALUE_MEMBER[old["type"]]
        short = terms.compact(name)
        if isinstance(body.get(short), dict):
            previous = "previous" + member[0].upper() + member[1:]
            body[short][previous] = _shown_value(old, member, terms)
    return body


def _shown_value(instance: Document, member: str, terms: TermMap) -> Any:
    value = instance[member]
    if instance["type"] == "VocabProperty":
        if isinstance(value, list):
            return [terms.compact(item) for item in value]
        return terms.compact(value)
    return value
