"""Subscriptions (ETSI GS CIM 009 clauses 5.2.12-5.2.15): payload -> stored document -> answer.

Pure. Type and attribute names are stored expanded with the creator's @context and
compacted with the reader's; `q` keeps its text and the IRI of every name it uses, so it
is shown in the reader's names and evaluated without the creator's @context at hand.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from context_broker._errors import BadRequestData
from context_broker._jsonld import ContextValue, TermMap
from context_broker._linked_q import parse_linked_q
from context_broker._names import check_name, check_uri
from context_broker._query import AttrPath, Comparison, Exists, Pattern, Query, ValueList
from context_broker._query._geo import GeoQuery, parse_geo_query
from context_broker._query._patterns import plan_patterns
from context_broker._query._q import And, Or, parse_q, to_q_string
from context_broker._query._scope import parse_scope_q
from context_broker._query._to_mongo import to_mongo
from context_broker._query._types import TypeSelection
from context_broker._time import format_datetime, parse_datetime

Document = dict[str, Any]
TypeParser = Callable[[str, Callable[[str], str]], TypeSelection]
Status = Literal["active", "paused", "expired"]

TRIGGERS = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues"}
FORMATS |= {"concise": "concise"}
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
MQTT_VERSIONS = ("mqtt3.1.1", "mqtt5.0")
MAX_LIST = 256
"""Most entries of one list member (entities, watchedAttributes, attributes, key-values)."""

_MEMBERS = frozenset(
    {
        "id",
        "type",
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "notificationTrigger",
        "timeInterval",
        "q",
        "geoQ",
        "scopeQ",
        "lang",
        "isActive",
        "notification",
        "expiresAt",
        "throttling",
        "jsonldContext",
        "@context",
    }
)
_READ_ONLY = frozenset({"status", "createdAt", "modifiedAt"})
_NOTIFICATION_MEMBERS = frozenset({"attributes", "format", "showChanges", "sysAttrs", "endpoint"})
_NOTIFICATION_READ_ONLY = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
)
_ENDPOINT_MEMBERS = frozenset({"uri", "accept", "receiverInfo", "notifierInfo"})
_GEO_MEMBERS = frozenset({"geometry", "coordinates", "georel", "geoproperty"})
_SELECTOR_MEMBERS = frozenset({"id", "idPattern", "type"})
# Members a PATCH may remove with null (clause 5.8.2); the others are required or defaulted.
_REMOVABLE = frozenset(
    {
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "timeInterval",
        "q",
        "geoQ",
        "scopeQ",
        "lang",
        "expiresAt",
        "throttling",
        "jsonldContext",
    }
)


def new_subscription_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4().hex}"


def parse_subscription(
    payload: object, terms: TermMap, now: datetime, types: TypeParser
) -> Document:
    """A Subscription payload as its stored document; BadRequestData names the wrong member."""
    if not isinstance(payload, dict):
        raise BadRequestData("a Subscription must be a JSON object")
    if payload.get("type") != "Subscription":
        raise BadRequestData(
            f'type: a Subscription has "type": "Subscription"; got {payload.get("type")!r}'
        )
    read_only = sorted(set(payload) & _READ_ONLY)
    if read_only:
        raise BadRequestData(f"{read_only[0]}: a read-only member of a Subscription")
    unknown = sorted(set(payload) - _MEMBERS)
    if unknown:
        raise BadRequestData(f"{unknown[0]}: not a member of a Subscription")
    raw_id = payload.get("id")
    doc: Document = {
        "_id": new_subscription_id() if raw_id is None else _member(check_uri, raw_id, "id")
    }
    for member in ("subscriptionName", "description", "lang"):
        if member in payload:
            doc[member] = _text(payload[member], member)
    if "entities" in payload:
        doc["entities"] = _entities(payload["entities"], terms, types)
    if "watchedAttributes" in payload:
        doc["watchedAttributes"] = _names(payload["watchedAttributes"], "watchedAttributes", terms)
    doc["notificationTrigger"] = _triggers(payload.get("notificationTrigger"))
    for member in ("timeInterval", "throttling"):
        if member in payload:
            doc[member] = _seconds(payload[member], member, positive=member == "timeInterval")
    if "timeInterval" in doc and "watchedAttributes" in doc:
        raise BadRequestData("timeInterval: a periodic subscription has no watchedAttributes")
    if "timeInterval" in doc and "throttling" in doc:
        raise BadRequestData("throttling: a periodic subscription (timeInterval) has no throttling")
    if "entities" not in doc and "watchedAttributes" not in doc:
        raise BadRequestData("entities: a Subscription needs entities, watchedAttributes or both")
    if "q" in payload:
        doc["q"], doc["qNames"] = _q(payload["q"], terms)
    if "geoQ" in payload:
        doc["geoQ"] = _geo_q(payload["geoQ"], terms)
    if "scopeQ" in payload:
        scope_q = _text(payload["scopeQ"], "scopeQ")
        parse_scope_q(scope_q)
        doc["scopeQ"] = scope_q
    is_active = payload.get("isActive", True)
    if not isinstance(is_active, bool):
        raise BadRequestData(f"isActive: must be true or false; got {is_active!r}")
    doc["isActive"] = is_active
    if "expiresAt" in payload:
        expires = _member(parse_datetime, payload["expiresAt"], "expiresAt")
        if expires <= now:
            raise BadRequestData("expiresAt: must be in the future")
        doc["expiresAt"] = expires
    if "jsonldContext" in payload:
        doc["jsonldContext"] = _member(check_uri, payload["jsonldContext"], "jsonldContext")
    doc["notification"] = _notification(payload.get("notification"), terms)
    doc["context"] = orjson.dumps(terms.response_context).decode()
    doc["createdAt"] = doc["modifiedAt"] = now
    doc["sent"] = {"timesSent": 0, "timesFailed": 0}
    return doc


def patch_subscription(
    stored: Document, fragment: object, terms: TermMap, now: datetime, types: TypeParser
) -> Document:
    """Update Subscription (clause 5.8.2): the fragment's members replace the stored ones
    (those of `notification` one by one), null removes an optional member; the result is
    validated as a whole. Delivery status and creation time are kept."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("the body must be a non-empty JSON object of Subscription members")
    if fragment.get("id", stored["_id"]) != stored["_id"]:
        raise BadRequestData("id: the id of a Subscription cannot change")
    current = render_subscription(stored, terms, now, status=False)
    current.pop("@context", None)
    merged: dict[str, Any] = {**current}
    for member, value in fragment.items():
        if member == "@context":
            continue
        if value is None:
            if member not in _REMOVABLE:
                raise BadRequestData(f"{member}: cannot be removed from a Subscription")
            merged.pop(member, None)
        elif member == "notification" and isinstance(value, dict):
            merged["notification"] = {**merged.get("notification", {}), **value}
        else:
            merged[member] = value
    merged["notification"] = {
        key: value
        for key, value in merged.get("notification", {}).items()
        if key not in _NOTIFICATION_READ_ONLY
    }
    doc = parse_subscription({**merged, "type": "Subscription"}, terms, now, types)
    doc["context"] = stored["context"]
    doc["createdAt"] = stored["createdAt"]
    doc["sent"] = stored.get("sent", {"timesSent": 0, "timesFailed": 0})
    return doc


def subscription_status(doc: Document, now: datetime) -> Status:
    """active, paused (isActive false) or expired (expiresAt passed)."""
    expires = doc.get("expiresAt")
    if expires is not None and _aware(expires) <= now:
        return "expired"
    return "active" if doc.get("isActive", True) else "paused"


def render_subscription(
    doc: Document, terms: TermMap, now: datetime, *, status: bool = True, sys_attrs: bool = False
) -> dict[str, Any]:
    """The Subscription as a client sees it, names compacted with the reader's @context."""
    out: dict[str, Any] = {"id": doc["_id"], "type": "Subscription"}
    for member in ("subscriptionName", "description"):
        if member in doc:
            out[member] = doc[member]
    if "entities" in doc:
        out["entities"] = [_render_selector(selector, terms) for selector in doc["entities"]]
    if "watchedAttributes" in doc:
        out["watchedAttributes"] = [terms.compact(name) for name in doc["watchedAttributes"]]
    out["notificationTrigger"] = list(doc["notificationTrigger"])
    for member in ("timeInterval", "throttling"):
        if member in doc:
            out[member] = doc[member]
    if "q" in doc:
        out["q"] = render_q(doc["q"], dict(doc["qNames"]), terms)
    if "geoQ" in doc:
        geo = dict(doc["geoQ"])
        geo["geoproperty"] = terms.compact(geo["geoproperty"])
        out["geoQ"] = geo
    for member in ("scopeQ", "lang", "isActive", "jsonldContext"):
        if member in doc:
            out[member] = doc[member]
    if "expiresAt" in doc:
        out["expiresAt"] = format_datetime(doc["expiresAt"])
    out["notification"] = _render_notification(doc, terms, status=status)
    if status:
        out["status"] = subscription_status(doc, now)
    if sys_attrs:
        out["createdAt"] = format_datetime(doc["createdAt"])
        out["modifiedAt"] = format_datetime(doc["modifiedAt"])
    return out


def render_q(text: str, names: Mapping[str, str], terms: TermMap) -> str:
    """A stored q with its names as the reader's @context calls them (a q through
    Relationships as its creator wrote it)."""
    if parse_linked_q(text).conditions:
        return text

    def rename(name: str) -> str:
        iri = names.get(name)
        short = terms.compact(iri) if iri is not None else name
        return short if _is_q_name(short) else name

    return to_q_string(_renamed(parse_q(text), rename))


def q_expander(names: Mapping[str, str]) -> Callable[[str], str]:
    """The expansion of a stored q's names, as its creator's @context gave them."""
    return lambda name: names.get(name, name)


def geo_query_of(stored: Mapping[str, Any]) -> GeoQuery:
    """The stored geoQ as a query (its geoproperty is already expanded)."""
    found = parse_geo_query(
        stored["georel"], stored["geometry"], stored["coordinates"], stored["geoproperty"], str
    )
    assert found is not None
    return found


def context_of(doc: Document) -> ContextValue | None:
    """The @context the subscription was made with (its notifications use it)."""
    context: ContextValue | None = orjson.loads(doc["context"])
    return context


# --- members ------------------------------------------------------------------------------


def _member(check: Callable[[Any, str], Any], value: object, member: str) -> Any:
    """Run a check, its error prefixed with the member it is about."""
    try:
        return check(value, member)
    except BadRequestData as error:
        if error.detail.startswith(member):
            raise
        raise BadRequestData(f"{member}: {error.detail}") from None


def _text(value: object, member: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{member}: must be a non-empty string; got {value!r}")
    return value


def _list(value: object, member: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{member}: must be a non-empty array")
    if len(value) > MAX_LIST:
        raise BadRequestData(f"{member}: at most {MAX_LIST} entries")
    return value


def _names(value: object, member: str, terms: TermMap) -> list[str]:
    names = [_member(check_name, item, member) for item in _list(value, member)]
    return list(dict.fromkeys(terms.expand(name) for name in names))


def _triggers(value: object) -> list[str]:
    if value is None:
        return list(DEFAULT_TRIGGERS)
    triggers = _list(value, "notificationTrigger")
    for trigger in triggers:
        if trigger not in TRIGGERS:
            raise BadRequestData(
                f"notificationTrigger: {trigger!r} is not one of {', '.join(TRIGGERS)}"
            )
    return list(dict.fromkeys(triggers))


def _seconds(value: object, member: str, *, positive: bool) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestData(f"{member}: must be a number of seconds; got {value!r}")
    if value < 0 or (positive and value == 0) or math.isnan(value) or value > 10**9:
        raise BadRequestData(
            f"{member}: must be a {'positive' if positive else 'non-negative'} number of seconds"
        )
    return value


def _entities(value: object, terms: TermMap, types: TypeParser) -> list[Document]:
    selectors: list[Document] = []
    for raw in _list(value, "entities"):
        if not isinstance(raw, dict) or not raw:
            raise BadRequestData("entities: each entry is an object with id, idPattern or type")
        unknown = sorted(set(raw) - _SELECTOR_MEMBERS)
        if unknown:
            raise BadRequestData(f"entities: {unknown[0]!r} is not a member of an EntitySelector")
        if "type" not in raw:
            raise BadRequestData("entities: each EntitySelector of a Subscription names a type")
        selector: Document = {}
        if "id" in raw:
            selector["id"] = _member(check_uri, raw["id"], "entities")
        if "idPattern" in raw:
            pattern = _text(raw["idPattern"], "entities")
            _member(lambda v, _: plan_patterns(None, v, str), pattern, "entities")  # RE2
            selector["idPattern"] = pattern
        text = _text(raw["type"], "entities")
        selection = _member(lambda v, _: types(v, terms.expand), text, "entities")
        selector["types"] = [list(conjunction) for conjunction in selection]
        selectors.append(selector)
    return selectors


def _render_selector(selector: Document, terms: TermMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "id" in selector:
        out["id"] = selector["id"]
    if "idPattern" in selector:
        out["idPattern"] = selector["idPattern"]
    alternatives = [[terms.compact(name) for name in group] for group in selector["types"]]
    if len(alternatives) == 1:
        out["type"] = ";".join(alternatives[0])
    else:
        out["type"] = "|".join(
            f"({';'.join(group)})" if len(group) > 1 else group[0] for group in alternatives
        )
    return out


def _q(value: object, terms: TermMap) -> tuple[str, list[list[str]]]:
    text = _text(value, "q")
    parsed = parse_linked_q(text)  # terms through Relationships too (clause 4.5.23)
    queries = list(parsed.queries())
    names = [*parsed.names(), *(name for query in queries for name in _q_names(query))]
    expanded = {name: terms.expand(name) for name in dict.fromkeys(names)}
    expand = q_expander(expanded)
    for query in queries:
        to_mongo(query, expand)  # refuses what no store filter expresses
        plan_patterns(query, None, expand)  # compiles its patterns on RE2
    return text, [[name, iri] for name, iri in expanded.items()]


def _q_names(query: Query) -> list[str]:
    """Every name of a q that an @context expands: attributes, sub-attributes, and string
    values (a VocabProperty compares with expanded values)."""
    if isinstance(query, And | Or):
        return list(dict.fromkeys(name for term in query.terms for name in _q_names(term)))
    names = [query.path.attribute, *query.path.sub_attributes]
    if isinstance(query, Comparison):
        items = query.value.items if isinstance(query.value, ValueList) else (query.value,)
        names += [item for item in items if isinstance(item, str)]
    return names


def _renamed(query: Query, rename: Callable[[str], str]) -> Query:
    if isinstance(query, And):
        return And(tuple(_renamed(term, rename) for term in query.terms))
    if isinstance(query, Or):
        return Or(tuple(_renamed(term, rename) for term in query.terms))
    path = AttrPath(
        rename(query.path.attribute),
        tuple(rename(name) for name in query.path.sub_attributes),
        query.path.json_path,
    )
    if isinstance(query, Exists):
        return Exists(path, query.negated)
    if isinstance(query, Pattern):
        return Pattern(path, query.regex, query.negated)
    return Comparison(path, query.op, query.value)


def _is_q_name(name: str) -> bool:
    return bool(name) and name[0].isalpha() and all(c.isalnum() or c in "_-:" for c in name)


def _geo_q(value: object, terms: TermMap) -> Document:
    if not isinstance(value, dict):
        raise BadRequestData("geoQ: must be an object with geometry, coordinates and georel")
    unknown = sorted(set(value) - _GEO_MEMBERS)
    if unknown:
        raise BadRequestData(f"geoQ: {unknown[0]!r} is not a member of a GeoQuery")
    geoproperty = value.get("geoproperty", "location")

    def parse(raw: dict[str, Any], _: str) -> GeoQuery | None:
        return parse_geo_query(
            _text(raw.get("georel"), "georel"),
            _text(raw.get("geometry"), "geometry"),
            raw.get("coordinates"),
            _text(geoproperty, "geoproperty"),
            terms.expand,
        )

    parsed = _member(parse, value, "geoQ")
    assert parsed is not None
    return {
        "georel": value["georel"],
        "geometry": parsed.geometry["type"],
        "coordinates": parsed.geometry["coordinates"],
        "geoproperty": parsed.geoproperty,
    }


def _notification(value: object, terms: TermMap) -> Document:
    if not isinstance(value, dict):
        raise BadRequestData("notification: a Subscription needs a notification object")
    read_only = sorted(set(value) & _NOTIFICATION_READ_ONLY)
    if read_only:
        raise BadRequestData(f"notification: {read_only[0]} is read-only")
    unknown = sorted(set(value) - _NOTIFICATION_MEMBERS)
    if unknown:
        raise BadRequestData(f"notification: {unknown[0]!r} is not a member of NotificationParams")
    out: Document = {}
    if "attributes" in value:
        out["attributes"] = _names(value["attributes"], "notification.attributes", terms)
    chosen = value.get("format", "normalized")
    if chosen not in FORMATS:
        raise BadRequestData(
            f"notification.format: one of normalized, keyValues, concise; got {chosen!r}"
        )
    out["format"] = FORMATS[chosen]
    for flag in ("showChanges", "sysAttrs"):
        flag_value = value.get(flag, False)
        if not isinstance(flag_value, bool):
            raise BadRequestData(f"notification.{flag}: must be true or false")
        out[flag] = flag_value
    out["endpoint"] = _endpoint(value.get("endpoint"))
    return out


def _endpoint(value: object) -> Document:
    if not isinstance(value, dict):
        raise BadRequestData("notification.endpoint: an object with a uri is needed")
    unknown = sorted(set(value) - _ENDPOINT_MEMBERS)
    if unknown:
        raise BadRequestData(f"notification.endpoint: {unknown[0]!r} is not a member of Endpoint")
    uri = _text(value.get("uri"), "notification.endpoint.uri")
    check_endpoint_uri(uri)
    accept = value.get("accept", "application/json")
    if accept not in ACCEPTS:
        raise BadRequestData(
            f"notification.endpoint.accept: one of {', '.join(ACCEPTS)}; got {accept!r}"
        )
    out: Document = {"uri": uri, "accept": accept}
    for member in ("receiverInfo", "notifierInfo"):
        if member in value:
            out[member] = _key_values(value[member], f"notification.endpoint.{member}")
    for pair in out.get("notifierInfo", []):
        if pair["key"] == "MQTT-Version" and pair["value"] not in MQTT_VERSIONS:
            raise BadRequestData(
                f"notification.endpoint.notifierInfo: MQTT-Version is one of "
                f"{', '.join(MQTT_VERSIONS)}; got {pair['value']!r}"
            )
        if pair["key"] == "MQTT-QoS" and pair["value"] not in ("0", "1", "2"):
            raise BadRequestData("notification.endpoint.notifierInfo: MQTT-QoS is 0, 1 or 2")
    return out


def check_endpoint_uri(uri: str) -> None:
    """An absolute http, https, mqtt or mqtts URI with a host (an MQTT one with a topic)."""
    what = "notification.endpoint.uri"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise BadRequestData(f"{what}: {uri!r} is not a valid URI") from None
    if parts.scheme not in SCHEMES:
        raise BadRequestData(
            f"{what}: the scheme must be one of {', '.join(SCHEMES)}; got {parts.scheme!r}"
        )
    if not parts.hostname:
        raise BadRequestData(f"{what}: {uri!r} names no host")
    if port == 0:
        raise BadRequestData(f"{what}: {uri!r} names port 0")
    if parts.scheme.startswith("mqtt") and parts.path.strip("/") == "":
        raise BadRequestData(f"{what}: an MQTT endpoint names its topic: mqtt://host:1883/topic")
    if any(char.isspace() or ord(char) < 0x20 for char in uri):
        raise BadRequestData(f"{what}: {uri!r} holds white space or control characters")


def _key_values(value: object, member: str) -> list[dict[str, str]]:
    pairs: list[dict[str, str]] = []
    for item in _list(value, member):
        if (
            not isinstance(item, dict)
            or set(item) != {"key", "value"}
            or not isinstance(item["key"], str)
            or not isinstance(item["value"], str)
            or not item["key"]
        ):
            raise BadRequestData(f'{member}: each entry is {{"key": "...", "value": "..."}}')
        if any(ord(char) < 0x20 or char == "\x7f" for char in item["key"] + item["value"]):
            raise BadRequestData(f"{member}: keys and values hold no control characters")
        pairs.append({"key": item["key"], "value": item["value"]})
    return pairs


def _render_notification(doc: Document, terms: TermMap, *, status: bool) -> dict[str, Any]:
    stored = doc["notification"]
    out: dict[str, Any] = {}
    if "attributes" in stored:
        out["attributes"] = [terms.compact(name) for name in stored["attributes"]]
    out["format"] = stored["format"]
    out["showChanges"] = stored["showChanges"]
    out["sysAttrs"] = stored["sysAttrs"]
    out["endpoint"] = dict(stored["endpoint"])
    if status:
        sent = doc.get("sent", {})
        out["timesSent"] = sent.get("timesSent", 0)
        out["timesFailed"] = sent.get("timesFailed", 0)
        for member in ("lastNotification", "lastSuccess", "lastFailure"):
            if sent.get(member) is not None:
                out[member] = format_datetime(sent[member])
        if out["timesSent"] or out["timesFailed"]:
            out["status"] = "failed" if sent.get("failing") else "ok"
    return out


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
