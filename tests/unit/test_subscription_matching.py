"""Subscription matching and Notification documents, in memory: which subscriptions a change
notifies, found through the index without looking at the others."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from context_broker._entities import (
    FieldUpdate,
    build_document,
    parse_fragment,
    update_attributes,
    with_field_update,
)
from context_broker._http._params import parse_type_selection
from context_broker._jsonld import core_term_map
from context_broker._names import encode_field
from context_broker._subscriptions import (
    Change,
    SubscriptionIndex,
    build_notification,
    parse_subscription,
)

TERMS = core_term_map()
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
ENDPOINT = {"uri": "http://127.0.0.1:9/n"}


def sub(sub_id: str, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Subscription:{sub_id}",
        "type": "Subscription",
        "notification": {"endpoint": ENDPOINT},
    }
    if "entities" not in members and "watchedAttributes" not in members:
        body["entities"] = [{"type": "AirQualityObserved"}]
    body |= {name: value for name, value in members.items() if value is not None}
    return parse_subscription(body, TERMS, NOW - timedelta(days=1), parse_type_selection)


def entity(entity_id: str = "urn:ngsi-ld:AirQualityObserved:fi1", **attrs: Any) -> dict[str, Any]:
    payload = {"id": entity_id, "type": "AirQualityObserved"}
    payload |= {name: {"type": "Property", "value": value} for name, value in attrs.items()}
    return build_document(payload, TERMS, NOW)


def updated(doc: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    after = copy.deepcopy(doc)
    fragment = parse_fragment(
        {name: {"type": "Property", "value": value} for name, value in attrs.items()},
        TERMS,
        NOW,
    )
    update_attributes(after, fragment, NOW + timedelta(seconds=1))
    return after


def notified(index: SubscriptionIndex, change: Change) -> set[str]:
    return {doc["_id"].rsplit(":", 1)[1] for doc in index.match(change, NOW).subscriptions}


def iri(name: str) -> str:
    return TERMS.expand(name)


def test_change_names_created_updated_and_deleted_attributes() -> None:
    before = entity(no2=10, pm10=3)
    after = updated(before, no2=50)
    del after["attrs"][encode_field(iri("pm10"))]
    after["an"].remove(iri("pm10"))
    after["attrs"][encode_field(iri("o3"))] = after["attrs"][encode_field(iri("no2"))]
    after["an"].append(iri("o3"))
    change = Change.between(None, before, after)
    assert change.kind == "updated"
    assert change.updated == {iri("no2")}
    assert change.deleted == {iri("pm10")}
    assert change.created == {iri("o3")}
    assert Change.between(None, None, after).kind == "created"
    assert Change.between(None, before, None).kind == "deleted"


def test_triggers() -> None:
    index = SubscriptionIndex(
        [
            sub("default"),
            sub("created", notificationTrigger=["entityCreated"]),
            sub("updated", notificationTrigger=["entityUpdated"]),
            sub("deleted", notificationTrigger=["entityDeleted"]),
            sub("attrDeleted", notificationTrigger=["attributeDeleted"]),
            sub("attrUpdated", notificationTrigger=["attributeUpdated"]),
        ]
    )
    doc = entity(no2=10)
    assert notified(index, Change.between(None, None, doc)) == {"default", "created"}
    after = updated(doc, no2=11)
    assert notified(index, Change.between(None, doc, after)) == {
        "default",
        "updated",
        "attrUpdated",
    }
    assert notified(index, Change.between(None, doc, None)) == {"deleted"}
    emptied = copy.deepcopy(doc)
    emptied["attrs"] = {}
    emptied["an"] = []
    assert notified(index, Change.between(None, doc, emptied)) == {"updated", "attrDeleted"}


def test_watched_attributes_entities_and_filters() -> None:
    index = SubscriptionIndex(
        [
            sub("no2", watchedAttributes=["no2"]),
            sub("pm10", watchedAttributes=["pm10"]),
            sub("high", q="no2>40"),
            sub(
                "byId",
                entities=[
                    {"id": "urn:ngsi-ld:AirQualityObserved:fi1", "type": "AirQualityObserved"}
                ],
            ),
            sub(
                "otherId",
                entities=[
                    {"id": "urn:ngsi-ld:AirQualityObserved:po1", "type": "AirQualityObserved"}
                ],
            ),
            sub("pattern", entities=[{"idPattern": ":fi[0-9]+$", "type": "AirQualityObserved"}]),
            sub("otherType", entities=[{"type": "WeatherObserved"}]),
            sub("both", entities=[{"type": "AirQualityObserved;Device"}]),
            sub("either", entities=[{"type": "Device|AirQualityObserved"}]),
            sub("anyType", watchedAttributes=["no2"], entities=None),
            sub("paused", isActive=False),
            sub("scoped", scopeQ="/Toscana/#"),
            sub(
                "near",
                geoQ={
                    "georel": "near;maxDistance==1000",
                    "geometry": "Point",
                    "coordinates": [11.25, 43.77],
                },
            ),
        ]
    )
    before = entity(no2=10, pm10=1)
    change = Change.between(None, before, updated(before, no2=50))
    assert notified(index, change) == {"no2", "high", "byId", "pattern", "either", "anyType"}
    low = Change.between(None, before, updated(before, no2=20))
    assert "high" not in notified(index, low)


def test_scope_geo_and_expiry() -> None:
    expired = sub("expiring", expiresAt=(NOW + timedelta(minutes=1)).isoformat())
    index = SubscriptionIndex(
        [
            sub("scoped", scopeQ="/Toscana/#"),
            sub(
                "near",
                geoQ={
                    "georel": "near;maxDistance==1000",
                    "geometry": "Point",
                    "coordinates": [11.25, 43.77],
                },
            ),
            sub(
                "far",
                geoQ={
                    "georel": "near;maxDistance==10",
                    "geometry": "Point",
                    "coordinates": [12, 44],
                },
            ),
            expired,
        ]
    )
    payload = {
        "id": "urn:ngsi-ld:AirQualityObserved:geo",
        "type": "AirQualityObserved",
        "scope": "/Toscana/Firenze",
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [11.251, 43.771]},
        },
    }
    doc = build_document(payload, TERMS, NOW)
    assert notified(index, Change.between(None, None, doc)) == {"scoped", "near", "expiring"}
    later = index.match(Change.between(None, None, doc), NOW + timedelta(hours=1))
    assert "urn:ngsi-ld:Subscription:expiring" not in [d["_id"] for d in later.subscriptions]


def test_ten_thousand_subscriptions_only_candidates_are_evaluated() -> None:
    """A change looks only at the subscriptions of its entity's types and its attributes."""
    docs = [
        sub(
            f"s{i}",
            entities=[{"type": f"Type{i % 1000}"}],
            watchedAttributes=[f"attr{i % 7}"],
        )
        for i in range(9_990)
    ]
    docs += [sub(f"aq{i}", watchedAttributes=["no2"], q=f"no2>{i * 10}") for i in range(10)]
    index = SubscriptionIndex(docs)
    assert len(index) == 10_000
    before = entity(no2=10, pm10=1)
    result = index.match(Change.between(None, before, updated(before, no2=35)), NOW)
    assert result.evaluated == 10
    assert sorted(doc["_id"] for doc in result.subscriptions) == [
        "urn:ngsi-ld:Subscription:aq0",
        "urn:ngsi-ld:Subscription:aq1",
        "urn:ngsi-ld:Subscription:aq2",
        "urn:ngsi-ld:Subscription:aq3",
    ]
    # An entity of one of the many types, changing one watched attribute: its 10 subscriptions
    # of that type hold 2 that watch it (i % 7 == 3 among i = 5, 1005, ..., 9005).
    typed = build_document(
        {"id": "urn:ngsi-ld:Type5:1", "type": "Type5", "attr3": {"type": "Property", "value": 1}},
        TERMS,
        NOW,
    )
    found = index.match(Change.between(None, None, typed), NOW)
    watching = [i for i in range(5, 9_990, 1000) if i % 7 == 3]
    assert found.evaluated == len(watching)
    assert {doc["_id"] for doc in found.subscriptions} == {
        f"urn:ngsi-ld:Subscription:s{i}" for i in watching
    }
    index.remove(f"urn:ngsi-ld:Subscription:s{watching[0]}")
    assert index.match(Change.between(None, None, typed), NOW).evaluated == len(watching) - 1


def test_notification_formats_show_changes_and_context() -> None:
    subscription = sub(
        "n",
        notification={
            "endpoint": {**ENDPOINT, "accept": "application/ld+json"},
            "attributes": ["no2"],
            "showChanges": True,
        },
    )
    before = entity(no2=10, pm10=1)
    after = updated(before, no2=50)
    built = build_notification(
        subscription, [(before, after)], TERMS, NOW, "urn:ngsi-ld:Notification:1"
    )
    body = built.body
    assert body["id"] == "urn:ngsi-ld:Notification:1"
    assert body["type"] == "Notification"
    assert body["subscriptionId"] == "urn:ngsi-ld:Subscription:n"
    assert body["notifiedAt"] == "2026-03-01T12:00:00.000Z"
    assert "@context" in body and "Link" not in built.headers
    [data] = body["data"]
    assert set(data) == {"id", "type", "no2"}
    assert data["no2"]["value"] == 50 and data["no2"]["previousValue"] == 10
    key_values = sub(
        "kv", notification={"endpoint": ENDPOINT, "format": "keyValues", "sysAttrs": False}
    )
    plain = build_notification(key_values, [(None, after)], TERMS, NOW)
    assert plain.body["data"] == [
        {"id": after["_id"], "type": "AirQualityObserved", "no2": 50, "pm10": 1}
    ]
    assert (
        "@context" not in plain.body
        and 'rel="http://www.w3.org/ns/json-ld#context"' in plain.headers["Link"]
    )
    concise = sub("c", notification={"endpoint": ENDPOINT, "format": "concise", "sysAttrs": True})
    [shown] = build_notification(concise, [(None, after)], TERMS, NOW).body["data"]
    assert shown["no2"]["value"] == 50 and "createdAt" in shown


@pytest.mark.parametrize("accept", ["application/geo+json"])
def test_geojson_notification(accept: str) -> None:
    subscription = sub("g", notification={"endpoint": {**ENDPOINT, "accept": accept}})
    doc = build_document(
        {
            "id": "urn:ngsi-ld:AirQualityObserved:g",
            "type": "AirQualityObserved",
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [11.0, 43.0]},
            },
        },
        TERMS,
        NOW,
    )
    data = build_notification(subscription, [(None, doc)], TERMS, NOW).body["data"]
    assert data["type"] == "FeatureCollection"
    assert data["features"][0]["geometry"] == {"type": "Point", "coordinates": [11.0, 43.0]}


def test_a_field_update_applied_in_memory_is_what_the_store_writes() -> None:
    """The one-round-trip attribute update reports the entity after it without reading it
    back: `with_field_update` applies `$set`, `$unset` and the version as the store does,
    and leaves the document before untouched."""
    before = {
        "_id": "urn:x:1",
        "v": 3,
        "attrs": {"t": {"type": "Property", "value": 1, "unitCode": "CEL"}, "h": {"value": 5}},
    }
    change = FieldUpdate(
        required=(("t", None),),
        set_fields={"modifiedAt": "now", "attrs.t.value": 2, "gp.t": 7},
        unset_fields=("attrs.t.unitCode", "gc.t"),
        written={},
    )
    after = with_field_update(before, change)
    assert after == {
        "_id": "urn:x:1",
        "v": 4,
        "modifiedAt": "now",
        "attrs": {"t": {"type": "Property", "value": 2}, "h": {"value": 5}},
        "gp": {"t": 7},
    }
    assert before["attrs"]["t"] == {"type": "Property", "value": 1, "unitCode": "CEL"}
    assert before["v"] == 3


def test_a_linked_q_is_left_pending_only_when_the_other_conditions_hold() -> None:
    """Clause 4.9 with 4.5.23: a q through a Relationship needs the linked entity; the
    index hands such a subscription to its caller only once its entities, triggers,
    watched attributes and the q terms outside the linked ones hold, so other writes read
    nothing more."""
    linked = sub("linked", watchedAttributes=["no2"], q='refDevice{name}=="x";no2>1')
    index = SubscriptionIndex([linked, sub("plain", watchedAttributes=["no2"])])
    before = entity(no2=10, pm10=3)
    watched = index.match(Change.between(None, before, updated(before, no2=50)), NOW)
    assert [doc["_id"] for doc in watched.subscriptions] == ["urn:ngsi-ld:Subscription:plain"]
    assert [each.id for each in watched.pending] == ["urn:ngsi-ld:Subscription:linked"]
    other = index.match(Change.between(None, before, updated(before, pm10=4)), NOW)
    assert other.subscriptions == [] and other.pending == []
    low = index.match(Change.between(None, before, updated(before, no2=1)), NOW)
    assert low.pending == [], "no2>1 fails: the linked entity is not needed"
