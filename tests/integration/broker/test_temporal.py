"""History over real HTTP on the real store: the writes of the ordinary API recorded as
attribute instances, and the temporal API (ETSI GS CIM 009 clauses 4.5.7-4.5.9, 4.11,
5.7.3-5.7.4, 6.18-6.19) reading them back."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from _servers import ThreadedServer
from pymongo import MongoClient

from context_broker import create_app
from context_broker._settings import BrokerSettings
from context_broker._store import Store
from context_broker._temporal import RetentionSweep, TemporalStore
from context_broker._time import utc_now
from regional_tenants import tenant_database

from ._helpers import assert_problem, create, entity, geo, new_id, prop

pytestmark = pytest.mark.integration

T0 = "2026-03-01T10:00:00.000Z"
T1 = "2026-03-01T11:00:00.000Z"
T2 = "2026-03-01T12:00:00.000Z"
T3 = "2026-03-01T13:00:00.000Z"


def observed(value: Any, at: str) -> dict[str, Any]:
    return prop(value, observedAt=at)


async def sensor_with_history(api: httpx.AsyncClient, kind: str = "AirQuality") -> str:
    """An entity whose no2 was observed at T0, T1 and T2 (one create, two updates)."""
    entity_id = await create(api, entity(kind, no2=observed(10, T0), name=prop("Piazza del Duomo")))
    for value, at in ((20, T1), (30, T2)):
        response = await api.patch(
            f"/entities/{entity_id}/attrs", json={"no2": observed(value, at)}
        )
        assert response.status_code == 204, response.text
    return entity_id


async def temporal(api: httpx.AsyncClient, entity_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/temporal/entities/{entity_id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def values(instances: list[dict[str, Any]]) -> list[Any]:
    return [instance["value"] for instance in instances]


async def test_each_write_of_an_attribute_is_an_instance_of_its_history(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.7: the Temporal Representation holds, per attribute, an array of its
    instances, each with its instanceId (a URI); clause 6.19.3.1 retrieves it. An attribute
    no write changed has its one instance only."""
    entity_id = await sensor_with_history(api)
    body = await temporal(api, entity_id)
    assert body["id"] == entity_id
    assert body["type"] == "AirQuality"
    no2 = body["no2"]
    assert values(no2) == [10, 20, 30]
    assert [instance["observedAt"] for instance in no2] == [T0, T1, T2]
    assert all(instance["type"] == "Property" for instance in no2)
    ids = [instance["instanceId"] for instance in no2]
    assert len(set(ids)) == 3 and all(i.startswith("urn:ngsi-ld:") for i in ids)
    assert values(body["name"]) == ["Piazza del Duomo"]


async def test_merge_and_batch_upsert_are_recorded_too(api: httpx.AsyncClient) -> None:
    """Clause 4.5.7: every change of an attribute, by any operation (Merge Entity clause
    6.5.3.4, Batch Entity Upsert clause 6.15.3.1), is an instance of its history."""
    entity_id = new_id("AirQuality")
    upsert = [entity("AirQuality", entity_id, no2=observed(1, T0))]
    response = await api.post("/entityOperations/upsert", json=upsert)
    assert response.status_code == 201, response.text
    upsert = [entity("AirQuality", entity_id, no2=observed(2, T1))]
    response = await api.post("/entityOperations/upsert", json=upsert, params={"options": "update"})
    assert response.status_code == 204, response.text
    response = await api.patch(f"/entities/{entity_id}", json={"no2": observed(3, T2)})
    assert response.status_code == 204, response.text
    body = await temporal(api, entity_id, options="sysAttrs")
    assert values(body["no2"]) == [1, 2, 3]
    created = [instance["createdAt"] for instance in body["no2"]]
    assert created == sorted(created) and len(set(created)) == 3


async def test_timerel_selects_instances_by_their_observedAt(api: httpx.AsyncClient) -> None:
    """Clause 4.11: before is strictly before timeAt, after strictly after it, between
    from timeAt included to endTimeAt excluded; observedAt is the default timeproperty."""
    entity_id = await sensor_with_history(api)
    before = await temporal(api, entity_id, timerel="before", timeAt=T1, attrs="no2")
    assert values(before["no2"]) == [10]
    after = await temporal(api, entity_id, timerel="after", timeAt=T0, attrs="no2")
    assert values(after["no2"]) == [20, 30]
    between = await temporal(
        api, entity_id, timerel="between", timeAt=T1, endTimeAt=T3, attrs="no2"
    )
    assert values(between["no2"]) == [20, 30]
    none = await temporal(api, entity_id, timerel="after", timeAt=T3)
    assert "no2" not in none and none["id"] == entity_id


async def test_timeproperty_modifiedAt_compares_when_instances_were_written(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.2.21: timeproperty names the time compared; with modifiedAt, instances
    written since a moment, whatever their observedAt."""
    entity_id = await sensor_with_history(api)
    body = await temporal(api, entity_id, options="sysAttrs", attrs="no2")
    second_written = body["no2"][1]["modifiedAt"]
    since = await temporal(
        api,
        entity_id,
        timerel="after",
        timeAt="2000-01-01T00:00:00Z",
        timeproperty="modifiedAt",
        attrs="no2",
    )
    assert values(since["no2"]) == [10, 20, 30]
    before = await temporal(
        api, entity_id, timerel="before", timeAt=second_written, timeproperty="modifiedAt"
    )
    assert values(before["no2"]) == [10]


async def test_lastN_keeps_the_most_recent_instances_in_time_order(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.19.3.1 (lastN): only the N most recent instances of each attribute."""
    entity_id = await sensor_with_history(api)
    body = await temporal(api, entity_id, lastN="2")
    assert values(body["no2"]) == [20, 30]
    assert values(body["name"]) == ["Piazza del Duomo"]


async def test_temporalValues_pairs_each_value_with_its_time(api: httpx.AsyncClient) -> None:
    """Clause 4.5.9: the Simplified Temporal Representation, `values` as [value, time]
    pairs (`objects` for a Relationship)."""
    entity_id = await sensor_with_history(api)
    response = await api.post(
        f"/entities/{entity_id}/attrs",
        json={"servedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Station:s1"}},
    )
    assert response.status_code == 204, response.text
    body = await temporal(api, entity_id, options="temporalValues", attrs="no2,servedBy")
    assert body["no2"] == {"type": "Property", "values": [[10, T0], [20, T1], [30, T2]]}
    assert body["servedBy"]["type"] == "Relationship"
    assert [pair[0] for pair in body["servedBy"]["objects"]] == ["urn:ngsi-ld:Station:s1"]
    assert set(body) == {"id", "type", "no2", "servedBy"}


async def test_query_temporal_evolution_selects_entities_as_a_query_does(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.18.3.1: entities selected by type, q and attrs as Query Entities selects
    them (clause 5.7.2), each in its temporal representation."""
    high = await sensor_with_history(api, "Station")
    low = await create(api, entity("Station", no2=observed(5, T0)))
    response = await api.get(
        "/temporal/entities",
        params={"type": "Station", "timerel": "before", "timeAt": T3, "attrs": "no2"},
    )
    assert response.status_code == 200, response.text
    by_id = {body["id"]: body for body in response.json()}
    assert set(by_id) == {high, low}
    assert values(by_id[high]["no2"]) == [10, 20, 30]
    assert set(by_id[high]) == {"id", "type", "no2"}
    response = await api.get("/temporal/entities", params={"type": "Station", "q": "no2>10"})
    assert response.status_code == 200, response.text
    assert [body["id"] for body in response.json()] == [high]


async def test_a_geo_query_selects_the_entities_whose_history_is_answered(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.18.3.1: georel, geometry and coordinates select entities as in Query
    Entities (clause 4.10)."""
    near = await create(api, entity("Kiosk", no2=observed(1, T0), location=geo(11.25, 43.77)))
    await create(api, entity("Kiosk", no2=observed(2, T0), location=geo(10.40, 43.72)))
    response = await api.get(
        "/temporal/entities",
        params={
            "type": "Kiosk",
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": "[11.255,43.772]",
            "attrs": "no2",
        },
    )
    assert response.status_code == 200, response.text
    assert [(body["id"], values(body["no2"])) for body in response.json()] == [(near, [1])]


async def test_a_tenants_history_is_its_own(api: httpx.AsyncClient, broker_url: str) -> None:
    """Clause 4.14: tenants are isolated; another tenant sees none of this history."""
    entity_id = await sensor_with_history(api)
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": f"{new_id()[-12:]}b"}
    ) as other:
        await create(other, entity("AirQuality", no2=observed(99, T0)))
        response = await other.get(f"/temporal/entities/{entity_id}")
        assert_problem(response, 404, "ResourceNotFound")
        response = await other.get("/temporal/entities", params={"type": "AirQuality"})
        assert entity_id not in [body["id"] for body in response.json()]


async def test_bad_temporal_queries_are_refused(api: httpx.AsyncClient) -> None:
    """Clause 5.2.21 and 6.19.3.1: timeAt goes with timerel, endTimeAt with between, a
    timerel and a timeproperty from their lists, lastN positive: else 400 BadRequestData;
    an entity without history or existence is 404 ResourceNotFound."""
    entity_id = await sensor_with_history(api)
    path = f"/temporal/entities/{entity_id}"
    wrong = [
        {"timerel": "between", "timeAt": T0},
        {"timerel": "before"},
        {"timeAt": T0},
        {"timerel": "after", "timeAt": T0, "endTimeAt": T1},
        {"timerel": "during", "timeAt": T0},
        {"timerel": "between", "timeAt": T1, "endTimeAt": T0},
        {"timerel": "before", "timeAt": "yesterday"},
        {"timeproperty": "deletedAt"},
        {"lastN": "0"},
        {"lastN": "many"},
    ]
    for params in wrong:
        body = assert_problem(await api.get(path, params=params), 400, "BadRequestData")
        assert body["detail"], params
    missing = await api.get(f"/temporal/entities/{new_id()}")
    assert_problem(missing, 404, "ResourceNotFound")
    response = await api.get("/temporal/entities", params={"timerel": "before", "timeAt": T0})
    assert_problem(response, 400, "BadRequestData")


async def test_an_entity_deleted_keeps_its_history(api: httpx.AsyncClient) -> None:
    """Clause 4.5.7: the temporal evolution is kept apart from the entity; deleting the
    entity (clause 6.5.3.2) leaves it readable."""
    entity_id = await sensor_with_history(api)
    response = await api.delete(f"/entities/{entity_id}")
    assert response.status_code == 204, response.text
    body = await temporal(api, entity_id, attrs="no2")
    assert values(body["no2"]) == [10, 20, 30]


async def test_aggregated_values_per_period_match_values_computed_here(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.19 (Aggregated Temporal Representation), aggrMethods and
    aggrPeriodDuration: per method, [value, start, end] of each period from timeAt."""
    readings = [3.0, 7.5, 1.0, 4.0, 4.0, 9.5]  # every 20 minutes from T0
    entity_id = await create(api, entity("AirQuality", no2=observed(readings[0], T0)))
    for minute, value in enumerate(readings[1:], start=1):
        at = f"2026-03-01T{10 + minute * 20 // 60}:{minute * 20 % 60:02d}:00.000Z"
        response = await api.patch(
            f"/entities/{entity_id}/attrs", json={"no2": observed(value, at)}
        )
        assert response.status_code == 204, response.text
    methods = "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq"
    body = await temporal(
        api,
        entity_id,
        options="aggregatedValues",
        aggrMethods=methods,
        aggrPeriodDuration="PT1H",
        timerel="between",
        timeAt=T0,
        endTimeAt=T2,
    )
    no2 = body["no2"]
    assert no2["type"] == "Property"
    hours = [readings[:3], readings[3:]]
    periods = [[T0, T1], [T1, T2]]
    expected = {
        "totalCount": [len(hour) for hour in hours],
        "distinctCount": [len(set(hour)) for hour in hours],
        "sum": [sum(hour) for hour in hours],
        "avg": [statistics.fmean(hour) for hour in hours],
        "min": [min(hour) for hour in hours],
        "max": [max(hour) for hour in hours],
        "stddev": [statistics.pstdev(hour) for hour in hours],
        "sumsq": [sum(v * v for v in hour) for hour in hours],
    }
    for method, wanted in expected.items():
        got = no2[method]
        assert [period[1:] for period in got] == periods, method
        assert [period[0] for period in got] == pytest.approx(wanted), method
    last = await temporal(
        api,
        entity_id,
        options="aggregatedValues",
        aggrMethods="max",
        aggrPeriodDuration="PT1H",
        timerel="after",
        timeAt=T0,
        lastN="1",
    )
    assert last["no2"]["max"] == [[9.5, T1, T2]]
    whole = await temporal(api, entity_id, options="aggregatedValues", aggrMethods="avg")
    assert whole["no2"]["avg"][0][0] == pytest.approx(statistics.fmean(readings))


async def test_bad_aggregations_are_refused(api: httpx.AsyncClient) -> None:
    """Clause 6.3.x: aggrMethods from the spec's list, aggrPeriodDuration an ISO 8601
    duration, both only with options=aggregatedValues: else 400 naming the parameter."""
    entity_id = await sensor_with_history(api)
    wrong = [
        {"options": "aggregatedValues"},
        {"options": "aggregatedValues", "aggrMethods": "median"},
        {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "1 hour"},
        {"aggrMethods": "avg"},
    ]
    for params in wrong:
        response = await api.get(f"/temporal/entities/{entity_id}", params=params)
        body = assert_problem(response, 400, "BadRequestData")
        assert "aggr" in body["detail"], params


async def test_deleting_the_temporal_representation_leaves_the_entity(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.19.3.2 (Delete Temporal Representation of an Entity, clause 5.6.16): 204,
    the history is gone, the entity stays; an entity without history is 404."""
    entity_id = await sensor_with_history(api)
    response = await api.delete(f"/temporal/entities/{entity_id}")
    assert response.status_code == 204, response.text
    assert await temporal(api, entity_id) == {"id": entity_id, "type": "AirQuality"}
    assert (await api.get(f"/entities/{entity_id}")).status_code == 200
    again = await api.delete(f"/temporal/entities/{entity_id}")
    assert_problem(again, 404, "ResourceNotFound")


# --- a broker with other settings on the same store -----------------------------------------


@pytest.fixture(scope="module")
def small_broker(broker_settings: BrokerSettings) -> Iterator[str]:
    """A broker that answers at most 2 instances of an attribute and keeps 30 days."""
    settings = broker_settings.model_copy(
        update={"temporal_max_instances": 2, "temporal_retention_days": 30}
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture
async def small(small_broker: str, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=small_broker + "/ngsi-ld/v1", headers={"NGSILD-Tenant": tenant}, timeout=30.0
    ) as http:
        yield http


async def test_an_answer_cut_by_the_servers_maximum_says_which_range_it_holds(
    small: httpx.AsyncClient,
) -> None:
    """Clause 6.3.20: a temporal answer holding fewer instances than selected, because of
    the server's maximum, is 206 Partial Content with a Content-Range of the times held."""
    entity_id = await sensor_with_history(small)
    response = await small.get(f"/temporal/entities/{entity_id}", params={"attrs": "no2"})
    assert response.status_code == 206, response.text
    assert values(response.json()["no2"]) == [10, 20]
    assert response.headers["Content-Range"] == f"date-time {T0}-{T1}/*"
    response = await small.get(
        f"/temporal/entities/{entity_id}", params={"attrs": "no2", "lastN": "3"}
    )
    assert response.status_code == 206, response.text
    assert values(response.json()["no2"]) == [20, 30]
    assert response.headers["Content-Range"] == f"date-time {T1}-{T2}/3"
    response = await small.get(
        f"/temporal/entities/{entity_id}", params={"attrs": "no2", "lastN": "2"}
    )
    assert response.status_code == 200, response.text
    assert "Content-Range" not in response.headers


async def test_a_long_history_answers_its_ends_and_ranges_exactly(
    small: httpx.AsyncClient,
) -> None:
    """Clauses 4.11 and 6.19.3.1: lastN, timerel and the server's maximum select the same
    instances however long the attribute's history is (it is read in time windows)."""
    entity_id = await create(small, entity("AirQuality", no2=observed(0, T0)))
    for minute in range(1, 40):
        at = f"2026-03-01T10:{minute:02d}:00.000Z"
        response = await small.patch(
            f"/entities/{entity_id}/attrs", json={"no2": observed(minute, at)}
        )
        assert response.status_code == 204, response.text
    path = f"/temporal/entities/{entity_id}"
    last = await small.get(path, params={"lastN": "2"})
    assert last.status_code == 200, last.text
    assert values(last.json()["no2"]) == [38, 39]
    first = await small.get(path)
    assert first.status_code == 206
    assert values(first.json()["no2"]) == [0, 1]
    assert first.headers["Content-Range"] == f"date-time {T0}-2026-03-01T10:01:00.000Z/*"
    between = await small.get(
        path,
        params={
            "timerel": "between",
            "timeAt": "2026-03-01T10:30:00Z",
            "endTimeAt": "2026-03-01T10:32:00Z",
        },
    )
    assert between.status_code == 200, between.text
    assert values(between.json()["no2"]) == [30, 31]
    before = await small.get(
        path, params={"timerel": "before", "timeAt": "2026-03-01T10:20:00Z", "lastN": "2"}
    )
    assert values(before.json()["no2"]) == [18, 19]


async def test_retention_is_a_ttl_index_with_the_configured_days(
    small: httpx.AsyncClient, broker_settings: BrokerSettings, tenant: str
) -> None:
    """The history keeps instances CONTESTO_TEMPORAL_RETENTION_DAYS after they were
    written: a TTL index on the time each was recorded."""
    await sensor_with_history(small)
    client: MongoClient[dict[str, Any]] = MongoClient(broker_settings.mongo_url)
    with client:
        database = client[tenant_database(broker_settings.database_prefix, tenant)]
        indexes = {index["name"]: index for index in database["temporal_instances"].list_indexes()}
    retention = indexes["retention"]
    assert dict(retention["key"]) == {"at": 1}
    assert retention["expireAfterSeconds"] == 30 * 86_400


async def test_the_sweep_deletes_instances_past_their_retention(
    api: httpx.AsyncClient, broker_settings: BrokerSettings, tenant: str
) -> None:
    """Where no TTL monitor runs (the embedded store), each API process's sweep deletes
    the instances written more than CONTESTO_TEMPORAL_RETENTION_DAYS ago, and only those."""
    entity_id = await sensor_with_history(api)
    store = Store.connect(
        broker_settings.mongo_url, broker_settings.database_prefix, auto_create=False
    )
    try:
        history = TemporalStore(store, 30)

        async def only_this_tenant() -> list[str]:
            return [tenant]

        history.tenants = only_this_tenant  # type: ignore[method-assign]
        sweep = RetentionSweep(history)
        assert await sweep.sweep(utc_now() + timedelta(days=29)) == 0
        assert values((await temporal(api, entity_id))["no2"]) == [10, 20, 30]
        assert await sweep.sweep(utc_now() + timedelta(days=30, minutes=1)) == 4
    finally:
        await store.close()
    assert await temporal(api, entity_id) == {"id": entity_id, "type": "AirQuality"}


@pytest.fixture(scope="module")
def unrecorded_broker(broker_settings: BrokerSettings) -> Iterator[str]:
    settings = broker_settings.model_copy(update={"temporal": False})
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


async def test_recording_off_records_nothing(unrecorded_broker: str, tenant: str) -> None:
    """CONTESTO_TEMPORAL=off: writes are not recorded; the entity has no history."""
    async with httpx.AsyncClient(
        base_url=unrecorded_broker + "/ngsi-ld/v1", headers={"NGSILD-Tenant": tenant}
    ) as http:
        entity_id = await sensor_with_history(http)
        body = await temporal(http, entity_id)
    assert body == {"id": entity_id, "type": "AirQuality"}
