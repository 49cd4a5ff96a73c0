"""The Subscription API over real HTTP (clauses 5.8, 6.10-6.11): create, retrieve, query with
paging, update, delete, validation, @context compaction and tenant isolation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._helpers import LD, assert_problem, link

pytestmark = pytest.mark.integration

ENDPOINT = {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}
EX = "https://ex.org/terms/"


def subscription(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}],
        "watchedAttributes": ["no2"],
        "q": "no2>40",
        "notification": {"endpoint": dict(ENDPOINT)},
    }
    return body | members


async def make(api: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> str:
    response = await api.post("/subscriptions", json=body, **kwargs)
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location.startswith("/ngsi-ld/v1/subscriptions/")
    return location.rsplit("/", 1)[1]


async def test_create_retrieve_delete(api: httpx.AsyncClient) -> None:
    sub_id = await make(api, subscription(id="urn:ngsi-ld:Subscription:one"))
    assert sub_id == "urn:ngsi-ld:Subscription:one"
    got = await api.get(f"/subscriptions/{sub_id}")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["id"] == sub_id
    assert body["type"] == "Subscription"
    assert body["entities"] == [{"type": "AirQualityObserved"}]
    assert body["watchedAttributes"] == ["no2"]
    assert body["q"] == "no2>40"
    assert body["status"] == "active"
    assert body["isActive"] is True
    assert body["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    notification = body["notification"]
    assert notification["format"] == "normalized"
    assert notification["endpoint"] == ENDPOINT
    assert notification["timesSent"] == 0
    assert "Link" in got.headers
    gone = await api.delete(f"/subscriptions/{sub_id}")
    assert gone.status_code == 204
    assert_problem(await api.get(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")
    assert_problem(await api.delete(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")


async def test_duplicate_id_is_409(api: httpx.AsyncClient) -> None:
    body = subscription(id="urn:ngsi-ld:Subscription:twice")
    await make(api, body)
    assert_problem(await api.post("/subscriptions", json=body), 409, "AlreadyExists")


async def test_every_member_round_trips(api: httpx.AsyncClient) -> None:
    body = subscription(
        subscriptionName="no2 alert",
        description="NO2 above 40",
        entities=[
            {"id": "urn:ngsi-ld:AirQualityObserved:1", "type": "AirQualityObserved"},
            {"idPattern": "urn:ngsi-ld:AirQualityObserved:.*", "type": "(A;B)|C"},
        ],
        notificationTrigger=["entityCreated", "attributeDeleted"],
        geoQ={
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": [11.25, 43.77],
        },
        scopeQ="/Toscana/#",
        lang="it",
        isActive=False,
        expiresAt="2999-01-01T00:00:00Z",
        throttling=5,
        notification={
            "attributes": ["no2", "pm10"],
            "format": "keyValues",
            "showChanges": True,
            "sysAttrs": True,
            "endpoint": {
                "uri": "mqtt://127.0.0.1:1883/alerts/no2",
                "accept": "application/ld+json",
                "receiverInfo": [{"key": "X-Token", "value": "abc"}],
                "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
            },
        },
    )
    sub_id = await make(api, body)
    got = (await api.get(f"/subscriptions/{sub_id}", params={"options": "sysAttrs"})).json()
    for member in ("subscriptionName", "description", "entities", "notificationTrigger"):
        assert got[member] == body[member], member
    assert got["geoQ"] == {**body["geoQ"], "geoproperty": "location"}
    assert got["scopeQ"] == "/Toscana/#"
    assert got["lang"] == "it"
    assert got["isActive"] is False
    assert got["status"] == "paused"
    assert got["expiresAt"] == "2999-01-01T00:00:00.000Z"
    assert got["throttling"] == 5
    assert got["notification"]["endpoint"] == body["notification"]["endpoint"]
    assert got["notification"]["attributes"] == ["no2", "pm10"]
    assert got["notification"]["format"] == "keyValues"
    assert got["createdAt"].endswith("Z") and got["modifiedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("change", "member"),
    [
        ({"type": "Subscr"}, "type"),
        ({"id": "not a uri"}, "id"),
        ({"entities": []}, "entities"),
        ({"entities": [{"id": "urn:ngsi-ld:X:1"}]}, "entities"),
        ({"entities": [{"type": "A", "color": "red"}]}, "entities"),
        ({"entities": [{"type": "A", "idPattern": "(unclosed"}]}, "entities"),
        ({"entities": [{"type": "A;;B"}]}, "entities"),
        ({"watchedAttributes": "no2"}, "watchedAttributes"),
        ({"watchedAttributes": ["no 2"]}, "watchedAttributes"),
        ({"notificationTrigger": ["entityChanged"]}, "notificationTrigger"),
        ({"q": "no2>>40"}, "q"),
        ({"q": "a" * 5000}, "q"),
        ({"q": ";".join(f"a{i}>1" for i in range(40))}, "q"),
        ({"geoQ": {"georel": "near", "geometry": "Point", "coordinates": [1, 2]}}, "geoQ"),
        ({"geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": [[1, 2]]}}, "geoQ"),
        ({"scopeQ": "/a/("}, "scopeQ"),
        ({"isActive": "yes"}, "isActive"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "tomorrow"}, "expiresAt"),
        ({"throttling": -1}, "throttling"),
        ({"timeInterval": 10}, "timeInterval"),
        ({"status": "active"}, "status"),
        ({"colour": "red"}, "colour"),
        ({"notification": {}}, "notification.endpoint"),
        ({"notification": {"endpoint": {"uri": "ftp://x.org/a"}}}, "notification.endpoint.uri"),
        (
            {"notification": {"endpoint": {"uri": "file:///etc/passwd"}}},
            "notification.endpoint.uri",
        ),
        (
            {"notification": {"endpoint": {"uri": "mqtt://broker.example.org"}}},
            "notification.endpoint.uri",
        ),
        (
            {"notification": {"endpoint": {**ENDPOINT, "accept": "text/plain"}}},
            "notification.endpoint.accept",
        ),
        (
            {"notification": {"endpoint": {**ENDPOINT, "receiverInfo": [{"key": "a"}]}}},
            "notification.endpoint.receiverInfo",
        ),
        (
            {
                "notification": {
                    "endpoint": {**ENDPOINT, "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]}
                }
            },
            "notification.endpoint.notifierInfo",
        ),
        ({"notification": {"endpoint": ENDPOINT, "format": "xml"}}, "notification.format"),
        ({"notification": {"endpoint": ENDPOINT, "timesSent": 3}}, "timesSent"),
    ],
)
async def test_invalid_member_is_400_naming_it(
    api: httpx.AsyncClient, change: dict[str, Any], member: str
) -> None:
    response = await api.post("/subscriptions", json=subscription(**change))
    body = assert_problem(response, 400, "BadRequestData")
    assert member in body["detail"], body["detail"]


async def test_neither_entities_nor_watched_attributes_is_400(api: httpx.AsyncClient) -> None:
    body = subscription()
    del body["entities"], body["watchedAttributes"]
    detail = assert_problem(await api.post("/subscriptions", json=body), 400, "BadRequestData")
    assert "entities" in detail["detail"]


async def test_paging_count_and_links(api: httpx.AsyncClient) -> None:
    ids = [await make(api, subscription(id=f"urn:ngsi-ld:Subscription:page{i}")) for i in range(5)]
    first = await api.get("/subscriptions", params={"limit": 2, "count": "true"})
    assert first.status_code == 200, first.text
    assert first.headers["NGSILD-Results-Count"] == "5"
    assert [item["id"] for item in first.json()] == sorted(ids)[:2]
    links = first.headers.get_list("Link")
    assert any('rel="next"' in value and "offset=2" in value for value in links)
    assert not any('rel="prev"' in value for value in links)
    last = await api.get("/subscriptions", params={"limit": 2, "offset": 4})
    assert [item["id"] for item in last.json()] == sorted(ids)[4:]
    links = last.headers.get_list("Link")
    assert any('rel="prev"' in value and "offset=2" in value for value in links)
    assert not any('rel="next"' in value for value in links)
    counted = await api.get("/subscriptions", params={"limit": 0, "count": "true"})
    assert counted.json() == [] and counted.headers["NGSILD-Results-Count"] == "5"
    assert_problem(await api.get("/subscriptions", params={"limit": 0}), 400, "BadRequestData")


async def test_names_expanded_on_write_and_compacted_on_read(api: httpx.AsyncClient) -> None:
    context = {"@context": {"NO2": EX + "no2", "AQ": EX + "AirQualityObserved"}}
    hosted = await api.post("/jsonldContexts", json=context)
    assert hosted.status_code == 201, hosted.text
    url = str(api.base_url.join(hosted.headers["Location"]))
    body = subscription(
        entities=[{"type": "AQ"}],
        watchedAttributes=["NO2"],
        q="NO2>40",
        notification={"attributes": ["NO2"], "endpoint": ENDPOINT},
    )
    sub_id = await make(api, body, headers=link(url))
    # With the same @context: the names as written.
    same = (await api.get(f"/subscriptions/{sub_id}", headers=link(url))).json()
    assert same["entities"] == [{"type": "AQ"}]
    assert same["watchedAttributes"] == ["NO2"]
    assert same["q"] == "NO2>40"
    assert same["notification"]["attributes"] == ["NO2"]
    # With the core context only: the full IRIs (and q keeps names it cannot write).
    core = (await api.get(f"/subscriptions/{sub_id}")).json()
    assert core["entities"] == [{"type": EX + "AirQualityObserved"}]
    assert core["watchedAttributes"] == [EX + "no2"]
    # JSON-LD answer carries the @context in the body.
    ld = await api.get(
        f"/subscriptions/{sub_id}", headers={**link(url), "Accept": "application/ld+json"}
    )
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert ld.json()["@context"] == url
    # A body with its own @context (application/ld+json) works the same way.
    in_body = {**body, "@context": url}
    ld_id = await make(api, in_body, headers=LD)
    assert (await api.get(f"/subscriptions/{ld_id}", headers=link(url))).json()[
        "watchedAttributes"
    ] == ["NO2"]


async def test_update_merges_members_and_keeps_status(api: httpx.AsyncClient) -> None:
    sub_id = await make(api, subscription(throttling=5))
    patched = await api.patch(
        f"/subscriptions/{sub_id}",
        json={
            "isActive": False,
            "q": "no2>60",
            "throttling": None,
            "notification": {"format": "keyValues"},
        },
    )
    assert patched.status_code == 204, patched.text
    got = (await api.get(f"/subscriptions/{sub_id}")).json()
    assert got["isActive"] is False and got["status"] == "paused"
    assert got["q"] == "no2>60"
    assert "throttling" not in got
    assert got["notification"]["format"] == "keyValues"
    assert got["notification"]["endpoint"] == ENDPOINT
    resumed = await api.patch(f"/subscriptions/{sub_id}", json={"isActive": True})
    assert resumed.status_code == 204
    assert (await api.get(f"/subscriptions/{sub_id}")).json()["status"] == "active"
    bad = await api.patch(f"/subscriptions/{sub_id}", json={"notificationTrigger": ["x"]})
    assert "notificationTrigger" in assert_problem(bad, 400, "BadRequestData")["detail"]
    wrong_id = await api.patch(f"/subscriptions/{sub_id}", json={"id": "urn:ngsi-ld:S:other"})
    assert_problem(wrong_id, 400, "BadRequestData")
    missing = await api.patch("/subscriptions/urn:ngsi-ld:Subscription:none", json={"q": "a>1"})
    assert_problem(missing, 404, "ResourceNotFound")


async def test_tenants_are_isolated(broker_url: str, api: httpx.AsyncClient, tenant: str) -> None:
    sub_id = await make(api, subscription())
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": tenant + "x"}
    ) as other:
        await make(other, subscription())
        listed = (await other.get("/subscriptions")).json()
        assert sub_id not in [item["id"] for item in listed]
        assert_problem(await other.get(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")
        assert_problem(await other.delete(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")
    assert [item["id"] for item in (await api.get("/subscriptions")).json()] == [sub_id]


async def test_unknown_tenant_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/subscriptions", headers={"NGSILD-Tenant": "nosuchtenant1"})
    assert_problem(response, 404, "NonexistentTenant")


async def test_the_documented_curl_examples_run(
    api: httpx.AsyncClient, broker_url: str, tenant: str
) -> None:
    """docs/broker.md's Subscriptions examples, run as written against this broker."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "broker.md").read_text()
    section = text.split("\n## Subscriptions\n", 1)[1]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    script = script.replace("http://127.0.0.1:1026", broker_url).replace("firenze", tenant)
    done = subprocess.run(
        ["bash", "-e", "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # Each curl prints its answer without a newline: read the JSON documents one by one.
    decoder, answers, position = json.JSONDecoder(), [], 0
    while position < len(done.stdout):
        found, position = decoder.raw_decode(done.stdout, position)
        answers.append(found)
    retrieved, listed = answers
    assert retrieved["id"] == "urn:ngsi-ld:Subscription:no2-alert"
    assert retrieved["status"] == "active" and retrieved["q"] == "no2>40"
    assert [item["status"] for item in listed] == ["paused"]
    gone = await api.get("/subscriptions/urn:ngsi-ld:Subscription:no2-alert")
    assert_problem(gone, 404, "ResourceNotFound")
