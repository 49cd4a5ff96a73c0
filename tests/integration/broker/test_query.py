"""Query Entities over HTTP (clauses 5.7.2, 6.4.3.2, 6.23): selection, projection, order,
paging and errors, GET and POST alike."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from context_broker import BrokerSettings
from context_broker._http._params import parse_type_selection
from context_broker._query import parse_q
from context_broker._query._plan import EntityQuery, plan
from context_broker._query._store_traits import QUERY_TRAITS

from ._helpers import CORE_CONTEXT, DEFAULT_VOCAB, assert_problem, entity, prop

pytestmark = pytest.mark.integration

LINK_PART = re.compile(r'<([^>]*)>;\s*rel="(\w+)"')


def sensor(number: int, kind: str | list[str] = "Sensor", **attrs: Any) -> dict[str, Any]:
    return entity("Sensor", f"urn:ngsi-ld:Sensor:{number:03d}", **attrs) | {"type": kind}


async def create_all(api: httpx.AsyncClient, entities: list[dict[str, Any]]) -> None:
    response = await api.post("/entityOperations/create", json=entities)
    assert response.status_code == 201, response.text


async def ids_of(api: httpx.AsyncClient, **params: str) -> list[str]:
    response = await api.get("/entities", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def page_links(response: httpx.Response) -> dict[str, str]:
    links = {}
    for header in response.headers.get_list("link"):
        for url, rel in LINK_PART.findall(header):
            links[rel] = url
    return links


@pytest.fixture
async def city(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """Five entities of several types, temperatures, names, scopes."""
    await create_all(
        api,
        [
            sensor(1, temperature=prop(18.5), name=prop("bagno"), scope="/Toscana/Prato"),
            sensor(2, ["Sensor", "Camera"], temperature=prop(24), name=prop("Arno")),
            sensor(3, "Camera", name=prop("cortile"), scope="/Toscana/Firenze"),
            sensor(4, ["Camera", "Meter"], temperature=prop(30.5), name=prop("Duomo")),
            sensor(5, "Meter", power=prop(3)),
        ],
    )
    return api


def n(*numbers: int) -> list[str]:
    return [f"urn:ngsi-ld:Sensor:{number:03d}" for number in numbers]


async def test_ids_and_id_pattern_select_entities(city: httpx.AsyncClient) -> None:
    assert await ids_of(city, id=",".join(n(4, 2, 9))) == n(2, 4)
    assert await ids_of(city, idPattern=r"Sensor:00[13]$") == n(1, 3)
    assert await ids_of(city, idPattern="Sensor", type="Meter") == n(4, 5)


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ("Sensor", [1, 2]),
        ("Sensor,Meter", [1, 2, 4, 5]),
        ("Sensor|Meter", [1, 2, 4, 5]),
        ("Camera;Meter", [4]),
        ("(Camera;Meter)", [4]),
        ("(Sensor;Camera)|Meter", [2, 4, 5]),
        ("Camera;(Sensor,Meter)", [2, 4]),
        (f"{DEFAULT_VOCAB}Camera", [2, 3, 4]),
        ("Nothing", []),
    ],
)
async def test_type_queries_over_entities_with_several_types(
    city: httpx.AsyncClient, types: str, expected: list[int]
) -> None:
    """Clause 4.17: `,` and `|` are OR, `;` is AND, parentheses group."""
    assert await ids_of(city, type=types) == n(*expected)


@pytest.mark.parametrize("types", ["Sensor;", "(Sensor", "Sensor)", ",Sensor", "Sen sor", "()"])
async def test_a_malformed_type_query_is_400_at_its_position(
    city: httpx.AsyncClient, types: str
) -> None:
    body = assert_problem(
        await city.get("/entities", params={"type": types}), 400, "BadRequestData"
    )
    assert "type" in body["detail"] and "position" in body["detail"]


async def test_attrs_selects_entities_with_one_of_them_and_shows_only_those(
    city: httpx.AsyncClient,
) -> None:
    response = await city.get("/entities", params={"attrs": "power,name", "type": "Meter"})
    assert response.json() == [
        {"id": n(4)[0], "type": ["Camera", "Meter"], "name": prop("Duomo")},
        {"id": n(5)[0], "type": "Meter", "power": prop(3)},
    ]
    assert await ids_of(city, attrs="power") == n(5)


async def test_pick_and_omit_project_members_including_id_and_type(
    city: httpx.AsyncClient,
) -> None:
    """Clause 4.21: pick keeps, omit drops the members named, id and type included."""
    picked = await city.get("/entities", params={"type": "Sensor", "pick": "id,temperature"})
    assert picked.json() == [
        {"id": n(1)[0], "temperature": prop(18.5)},
        {"id": n(2)[0], "temperature": prop(24)},
    ]
    omitted = await city.get("/entities", params={"id": n(1)[0], "omit": "type,name,scope"})
    assert omitted.json() == [{"id": n(1)[0], "temperature": prop(18.5)}]
    only_ids = await city.get("/entities", params={"type": "Meter", "pick": "id"})
    assert only_ids.json() == [{"id": n(4)[0]}, {"id": n(5)[0]}]
    both = await city.get("/entities", params={"type": "Meter", "pick": "id", "attrs": "name"})
    assert "pick" in assert_problem(both, 400, "BadRequestData")["detail"]


async def test_q_filters_on_attribute_values(city: httpx.AsyncClient) -> None:
    assert await ids_of(city, q="temperature>20") == n(2, 4)
    assert await ids_of(city, q='temperature>20;name=="Arno"') == n(2)
    assert await ids_of(city, q="temperature<20|power==3") == n(1, 5)
    assert await ids_of(city, q="temperature>20", type="Camera") == n(2, 4)
    assert await ids_of(city, q="!temperature", type="Camera") == n(3)


async def test_q_matches_any_instance_of_an_attribute_with_dataset_ids(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.9: with no datasetId named, a term holds when any instance satisfies it."""
    roof = "urn:ngsi-ld:Dataset:roof"
    await create_all(
        api,
        [
            sensor(1, temperature=[prop(18.0), prop(31.0, datasetId=roof)]),
            sensor(2, temperature=prop(25.0)),
            sensor(
                3,
                temperature=[
                    prop(12.0, datasetId="urn:ngsi-ld:Dataset:a"),
                    prop(40.0, datasetId="urn:ngsi-ld:Dataset:b"),
                ],
            ),
            sensor(4, power=prop(3)),
        ],
    )
    assert await ids_of(api, q="temperature>30") == n(1, 3)
    assert await ids_of(api, q="temperature==20..35") == n(1, 2)
    # a range holds for one instance: 12 and 40 lie on either side of it, neither inside
    assert await ids_of(api, q="temperature==20..30") == n(2)
    assert await ids_of(api, q="temperature!=18") == n(1, 2, 3)
    assert await ids_of(api, q="temperature") == n(1, 2, 3)
    assert await ids_of(api, q="!temperature") == n(4)
    assert await ids_of(api, q="temperature>30;power") == []
    assert await ids_of(api, q="temperature>35|power==3") == n(3, 4)
    counted = await api.get("/entities", params={"q": "temperature>30", "count": "true"})
    assert counted.headers["NGSILD-Results-Count"] == "2"
    deleted = await api.delete(f"/entities/{n(1)[0]}/attrs/temperature", params={"datasetId": roof})
    assert deleted.status_code == 204, deleted.text
    assert await ids_of(api, q="temperature>30") == n(3)


async def test_q_on_a_language_property_without_a_language_matches_any_language(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.9: a LanguageProperty queried without a language tag matches any language."""
    await create_all(
        api,
        [
            sensor(
                1,
                name={
                    "type": "LanguageProperty",
                    "languageMap": {"it": "Firenze", "en": "Florence"},
                },
            ),
            sensor(2, name=prop("Firenze")),
            sensor(3, name={"type": "LanguageProperty", "languageMap": {"it": ["Pisa", "Pise"]}}),
        ],
    )
    assert await ids_of(api, q='name=="Florence"') == n(1)
    assert await ids_of(api, q='name=="Firenze"') == n(1, 2)
    assert await ids_of(api, q='name=="Pise"') == n(3)
    assert await ids_of(api, q='name[it]=="Firenze"') == n(1)
    assert await ids_of(api, q='name[en]=="Firenze"') == []
    assert await ids_of(api, q='name[*]=="Florence"') == n(1)
    assert await ids_of(api, q="name~=^Flo") == n(1)
    assert await ids_of(api, q='name!="Pisa"') == n(1, 2)
    updated = await api.patch(
        f"/entities/{n(1)[0]}/attrs/name",
        json={"type": "LanguageProperty", "languageMap": {"it": "Firenze"}},
    )
    assert updated.status_code == 204, updated.text
    assert await ids_of(api, q='name=="Florence"') == []
    assert await ids_of(api, q='name=="Firenze"') == n(1, 2)
    shown = await api.get(f"/entities/{n(1)[0]}")
    assert shown.json()["name"] == {"type": "LanguageProperty", "languageMap": {"it": "Firenze"}}


async def test_a_malformed_q_is_400_with_its_position(city: httpx.AsyncClient) -> None:
    body = assert_problem(
        await city.get("/entities", params={"q": "temperature>>20"}), 400, "BadRequestData"
    )
    assert "position" in body["detail"]


async def test_scope_q_and_local(city: httpx.AsyncClient) -> None:
    assert await ids_of(city, scopeQ="/Toscana/#") == n(1, 3)
    assert await ids_of(city, scopeQ="/Toscana/Prato") == n(1)
    assert await ids_of(city, local="true") == n(1, 2, 3, 4, 5)
    assert_problem(
        await city.get("/entities", params={"scopeQ": "Toscana//"}), 400, "BadRequestData"
    )


async def test_a_query_needs_a_selection(city: httpx.AsyncClient) -> None:
    """Clause 5.7.2.4: without id, idPattern, type, attrs, q, geoQ or scopeQ it is a 400."""
    body = assert_problem(await city.get("/entities"), 400, "BadRequestData")
    assert "at least one of" in body["detail"]
    assert_problem(await city.get("/entities", params={"limit": "3"}), 400, "BadRequestData")


async def test_representations_sys_attrs_and_lang_apply_to_each_entity(
    api: httpx.AsyncClient,
) -> None:
    await create_all(
        api,
        [
            sensor(
                1,
                title={"type": "LanguageProperty", "languageMap": {"it": "ponte", "en": "bridge"}},
            )
        ],
    )
    simplified = await api.get("/entities", params={"type": "Sensor", "options": "keyValues"})
    assert simplified.json() == [
        {"id": n(1)[0], "type": "Sensor", "title": {"languageMap": {"it": "ponte", "en": "bridge"}}}
    ]
    italian = await api.get("/entities", params={"type": "Sensor", "lang": "it"})
    assert italian.json()[0]["title"]["value"] == "ponte"
    with_sys = await api.get("/entities", params={"type": "Sensor", "options": "sysAttrs"})
    assert {"createdAt", "modifiedAt"} <= set(with_sys.json()[0])
    conflict = await api.get("/entities", params={"type": "Sensor", "options": "keyValues,concise"})
    assert_problem(conflict, 400, "BadRequestData")


async def test_geojson_query_with_geometry_property(api: httpx.AsyncClient) -> None:
    spot = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11.1, 43.9]}}
    await create_all(api, [sensor(1, spot=spot, name=prop("Prato"))])
    response = await api.get(
        "/entities",
        params={"type": "Sensor", "geometryProperty": "spot", "pick": "id,name"},
        headers={"Accept": "application/geo+json"},
    )
    assert response.headers["content-type"].startswith("application/geo+json")
    assert response.json() == {
        "type": "FeatureCollection",
        "features": [
            {
                "id": n(1)[0],
                "type": "Feature",
                "geometry": spot["value"],
                "properties": {"name": prop("Prato")},
            }
        ],
        "@context": CORE_CONTEXT,
    }


async def test_count_header_and_count_only(city: httpx.AsyncClient) -> None:
    counted = await city.get("/entities", params={"type": "Camera", "count": "true", "limit": "1"})
    assert counted.headers["NGSILD-Results-Count"] == "3"
    assert [e["id"] for e in counted.json()] == n(2)
    only = await city.get("/entities", params={"type": "Camera", "count": "true", "limit": "0"})
    assert only.json() == [] and only.headers["NGSILD-Results-Count"] == "3"
    merged = await city.get(
        "/entities", params={"q": 'temperature>20|name=="Duomo"', "count": "true"}
    )
    assert merged.headers["NGSILD-Results-Count"] == "2"
    plain = await city.get("/entities", params={"type": "Camera"})
    assert "NGSILD-Results-Count" not in plain.headers


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"limit": "1001"}, 403, "TooManyResults"),
        ({"limit": "-1"}, 400, "BadRequestData"),
        ({"limit": "ten"}, 400, "BadRequestData"),
        ({"limit": "0"}, 400, "BadRequestData"),
        ({"offset": "-5"}, 400, "BadRequestData"),
        ({"offset": "x"}, 400, "BadRequestData"),
        ({"count": "yes"}, 400, "BadRequestData"),
    ],
)
async def test_paging_parameters_out_of_range(
    city: httpx.AsyncClient, params: dict[str, str], status: int, error: str
) -> None:
    """Clause 5.5.9: a limit over the broker's maximum is 403 TooManyResults."""
    assert_problem(await city.get("/entities", params={"type": "Sensor", **params}), status, error)


async def test_paging_through_link_headers_visits_every_entity_once(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.3.10: rel="next"/"prev" links keep the other parameters."""
    await create_all(api, [sensor(i, temperature=prop(i % 7)) for i in range(23)])
    seen: list[str] = []
    url: str | None = "/entities?type=Sensor&q=temperature>=0&limit=5&options=keyValues"
    pages = 0
    while url is not None:
        response = await api.get(url.removeprefix("/ngsi-ld/v1"))
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()]
        links = page_links(response)
        assert ("prev" in links) == (pages > 0)
        assert all("q=temperature" in link and "keyValues" in link for link in links.values())
        url = links.get("next")
        pages += 1
    assert pages == 5
    assert seen == n(*range(23))
    back = await api.get("/entities", params={"type": "Sensor", "limit": "5", "offset": "3"})
    assert "offset=0" in page_links(back)["prev"]


async def test_order_by_attribute_values_and_entity_members(city: httpx.AsyncClient) -> None:
    """Clause 4.23: orderBy paths with ;asc or ;desc; ties and the rest by id."""
    assert await ids_of(city, q="temperature", orderBy="temperature;desc") == n(4, 2, 1)
    assert await ids_of(city, q="temperature", orderBy="temperature") == n(1, 2, 4)
    assert await ids_of(city, type="Camera", orderBy="id;desc") == n(4, 3, 2)
    assert await ids_of(city, type="Camera", orderBy="modifiedAt;desc,id") == n(2, 3, 4)
    assert await ids_of(city, type="Camera", orderBy="name", collation="it") == n(2, 3, 4)
    assert await ids_of(city, type="Camera", orderBy="name") == n(2, 4, 3)
    paged = await ids_of(city, q="temperature", orderBy="temperature;desc", limit="2", offset="1")
    assert paged == n(2, 1)


@pytest.mark.parametrize(
    "order_by", ["temperature;down", "", "temperature>3", "temperature,temperature", "a[*]"]
)
async def test_a_malformed_order_by_is_400(city: httpx.AsyncClient, order_by: str) -> None:
    response = await city.get("/entities", params={"type": "Sensor", "orderBy": order_by})
    assert "orderBy" in assert_problem(response, 400, "BadRequestData")["detail"]


async def test_a_malformed_collation_is_400(city: httpx.AsyncClient) -> None:
    response = await city.get("/entities", params={"type": "Sensor", "collation": "it IT"})
    assert_problem(response, 400, "BadRequestData")


async def test_post_query_answers_as_get(city: httpx.AsyncClient) -> None:
    """Clause 6.23: the Query body selects; limit, offset, count stay URL parameters."""
    body = {
        "type": "Query",
        "entities": [{"type": "Camera"}, {"type": "Sensor"}],
        "q": "temperature>20",
        "attrs": ["temperature"],
    }
    posted = await city.post("/entityOperations/query", json=body, params={"count": "true"})
    got = await city.get(
        "/entities",
        params={
            "type": "Camera,Sensor",
            "q": "temperature>20",
            "attrs": "temperature",
            "count": "true",
        },
    )
    assert posted.status_code == 200, posted.text
    assert posted.json() == got.json() and len(got.json()) == 2
    assert posted.headers["NGSILD-Results-Count"] == got.headers["NGSILD-Results-Count"] == "2"
    by_ids = {
        "type": "Query",
        "entities": [{"id": n(3, 5), "type": "Camera,Meter"}],
        "pick": "id",
    }
    answered = await city.post("/entityOperations/query", json=by_ids)
    assert answered.json() == [{"id": n(3)[0]}, {"id": n(5)[0]}]
    paged = await city.post(
        "/entityOperations/query", json={"type": "Query", "scopeQ": "/#"}, params={"limit": "1"}
    )
    assert page_links(paged)["next"].startswith("/ngsi-ld/v1/entityOperations/query?")


async def test_post_query_takes_its_context_from_the_body(city: httpx.AsyncClient) -> None:
    body = {
        "type": "Query",
        "entities": [{"type": "Kamera"}],
        "@context": [{"Kamera": f"{DEFAULT_VOCAB}Camera"}],
    }
    response = await city.post(
        "/entityOperations/query", json=body, headers={"Content-Type": "application/ld+json"}
    )
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == n(2, 3, 4)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"entities": [{"type": "Camera"}]}, 400, "BadRequestData"),
        ({"type": "Query"}, 400, "BadRequestData"),
        ({"type": "Query", "entities": []}, 400, "BadRequestData"),
        ({"type": "Query", "entities": [{"kind": "Camera"}]}, 400, "BadRequestData"),
        ({"type": "Query", "q": 5}, 400, "BadRequestData"),
        ({"type": "Query", "q": "a=="}, 400, "BadRequestData"),
        ({"type": "Query", "foo": 1, "q": "a"}, 400, "BadRequestData"),
        ({"type": "Query", "q": "a", "temporalQ": {}}, 422, "OperationNotSupported"),
    ],
)
async def test_post_query_refuses_malformed_queries(
    city: httpx.AsyncClient, body: dict[str, Any], status: int, error: str
) -> None:
    assert_problem(await city.post("/entityOperations/query", json=body), status, error)


async def test_queries_see_only_their_tenant(city: httpx.AsyncClient, broker_url: str) -> None:
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": "elsewhere"}
    ) as other:
        created = await other.post("/entities", json=sensor(1, "Camera"))
        assert created.status_code in (201, 409), created.text
        assert await ids_of(other, type="Camera") == n(1)
        posted = await other.post("/entityOperations/query", json={"type": "Query", "q": "name"})
        assert posted.json() == []
    assert await ids_of(city, type="Camera") == n(2, 3, 4)


async def test_id_type_and_q_queries_use_an_index(
    city: httpx.AsyncClient, tenant: str, broker_settings: BrokerSettings
) -> None:
    """The store answers from an index (IXSCAN) for id, type and q; q indexes come on demand.

    Each filter is looked up by its first condition (the store re-tests the others on what
    that finds); the embedded store's explain only reports that lookup for a filter of one
    condition, so that is what is explained."""
    assert await ids_of(city, q="temperature>20") == n(2, 4)
    expand = {"temperature": f"{DEFAULT_VOCAB}temperature"}.get
    queries = [
        EntityQuery(ids=tuple(n(1, 2))),
        EntityQuery(types=parse_type_selection("Camera", lambda t: DEFAULT_VOCAB + t)),
        EntityQuery(q=parse_q("temperature>20"), expand=lambda t: expand(t) or t),
    ]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(broker_settings.mongo_url)
    try:
        collection = client[f"{broker_settings.database_prefix}_{tenant}"]["entities"]
        for query in queries:
            for mongo in plan(query, QUERY_TRAITS).lookups:
                lookup = dict([next(iter(mongo.items()))])
                explained = await collection.find(lookup).explain()
                winning = explained["queryPlanner"]["winningPlan"]
                assert "IXSCAN" in str(winning), (mongo, explained)
    finally:
        await client.close()


async def test_geo_queries_reach_the_geo_search_from_get_and_post(api: httpx.AsyncClient) -> None:
    """The hook only: GET georel/geometry/coordinates and POST geoQ select alike."""

    def at(lon: float) -> dict[str, Any]:
        return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, 43.9]}}

    await create_all(api, [sensor(1, location=at(11.10)), sensor(2, location=at(11.50))])
    near = {"georel": "near;maxDistance==5000", "geometry": "Point", "coordinates": "[11.1,43.9]"}
    assert await ids_of(api, **near) == n(1)
    geo_q = {**near, "coordinates": [11.1, 43.9]}
    posted = await api.post("/entityOperations/query", json={"type": "Query", "geoQ": geo_q})
    assert [item["id"] for item in posted.json()] == n(1)
    bad = await api.get("/entities", params={**near, "coordinates": "[11.1"})
    assert_problem(bad, 400, "BadRequestData")


async def test_geo_queries_follow_a_location_that_moves_and_changes_shape(
    api: httpx.AsyncClient,
) -> None:
    """Points and other geometries are keyed apart; every update path keeps the keys in step."""

    def point(lon: float, lat: float) -> dict[str, Any]:
        return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}

    square = {
        "type": "GeoProperty",
        "value": {
            "type": "Polygon",
            "coordinates": [
                [[10.40, 43.70], [10.41, 43.70], [10.41, 43.71], [10.40, 43.71], [10.40, 43.70]]
            ],
        },
    }

    def near(lon: float, lat: float) -> dict[str, str]:
        return {
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": f"[{lon},{lat}]",
        }

    await create_all(api, [sensor(1, location=point(11.25, 43.77)), sensor(2, power=prop(1))])
    assert await ids_of(api, **near(11.25, 43.77)) == n(1)
    # partial update (fast path): a point to a polygon in Pisa
    moved = await api.patch(f"/entities/{n(1)[0]}/attrs/location", json=square)
    assert moved.status_code == 204, moved.text
    assert await ids_of(api, **near(11.25, 43.77)) == []
    assert await ids_of(api, **near(10.405, 43.705)) == n(1)
    # update attributes (fast path): back to a point, in Prato
    back = await api.patch(f"/entities/{n(1)[0]}/attrs", json={"location": point(11.10, 43.88)})
    assert back.status_code == 204, back.text
    assert await ids_of(api, **near(10.405, 43.705)) == []
    assert await ids_of(api, **near(11.10, 43.88)) == n(1)
    # batch upsert (update mode) of another entity, then a merge that removes the location
    upserted = await api.post(
        "/entityOperations/upsert",
        params={"options": "update"},
        json=[sensor(2, location=square)],
    )
    assert upserted.status_code == 204, upserted.text
    assert await ids_of(api, **near(10.405, 43.705)) == n(2)
    merged = await api.patch(f"/entities/{n(2)[0]}", json={"location": None})
    assert merged.status_code == 204, merged.text
    assert await ids_of(api, **near(10.405, 43.705)) == []
