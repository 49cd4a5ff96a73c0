"""Retrieve Entity and Query Entities as ETSI GS CIM 009 V1.8 words them (issue #16, group
"Retrieve and query"): projection, parameter checks, instance selection, paging links and the
GeoJSON representation, over real HTTP against the real store."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from ._helpers import assert_problem, create, entity, geo, new_id, prop

pytestmark = pytest.mark.integration

GEO_JSON = {"Accept": "application/geo+json"}
LINK_PART = re.compile(r'<([^>]*)>;\s*rel="(\w+)"')


async def _room(api: httpx.AsyncClient, **attrs: Any) -> str:
    defaults = {"temperature": prop(21), "name": prop("aula"), "location": geo(11.25, 43.77)}
    return await create(api, entity("Room", **(defaults | attrs)))


async def _retrieve(api: httpx.AsyncClient, entity_id: str, **params: str) -> httpx.Response:
    return await api.get(f"/entities/{entity_id}", params=params)


async def _query(api: httpx.AsyncClient, *, status: int = 200, **params: str) -> Any:
    response = await api.get("/entities", params=params)
    assert response.status_code == status, response.text
    return response.json()


async def test_pick_and_omit_project_a_retrieved_entity(api: httpx.AsyncClient) -> None:
    """Clause 4.21 and 6.5.3.1: pick keeps only the named members (id and type included),
    omit leaves them out; ',' and '|' both separate names."""
    room = await _room(api)
    picked = await _retrieve(api, room, pick="id,temperature")
    assert picked.status_code == 200, picked.text
    assert picked.json() == {"id": room, "temperature": prop(21)}
    piped = await _retrieve(api, room, pick="id|name", options="keyValues")
    assert piped.json() == {"id": room, "name": "aula"}
    omitted = await _retrieve(api, room, omit="type,temperature|location")
    assert omitted.json() == {"id": room, "name": prop("aula")}


@pytest.mark.parametrize(
    "params",
    [
        {"pick": "id", "omit": "name"},
        {"pick": "id", "attrs": "name"},
        {"pick": ""},
        {"pick": "id,,name"},
        {"omit": "name|"},
        {"pick": "name{id"},
        {"omit": "name}"},
        {"attrs": "id,type"},
    ],
)
async def test_malformed_projections_are_400(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 4.21: pick excludes omit and attrs; a projection lists non-empty names with
    balanced braces; attrs lists attributes, which id and type are not (clause 5.7.1.4)."""
    room = await _room(api)
    assert_problem(await _retrieve(api, room, **params), 400, "BadRequestData")
    query = await api.get("/entities", params={"type": "Room", **params})
    assert_problem(query, 400, "BadRequestData")


@pytest.mark.parametrize(
    "params",
    [{"pick": "humidity"}, {"attrs": "humidity"}, {"omit": "id,type,temperature,name,location"}],
)
async def test_a_projection_that_leaves_nothing_is_404(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 5.7.1.4: an entity holding none of the requested attributes is not found."""
    room = await _room(api)
    assert_problem(await _retrieve(api, room, **params), 404, "ResourceNotFound")


async def test_pick_and_omit_project_query_results(api: httpx.AsyncClient) -> None:
    """Clause 4.21 and 6.4.3.2: the same projection applies to each entity of a query."""
    room = await _room(api)
    assert await _query(api, type="Room", pick="id|temperature") == [
        {"id": room, "temperature": prop(21)}
    ]
    assert await _query(api, type="Room", omit="location|name", format="keyValues") == [
        {"id": room, "type": "Room", "temperature": 21}
    ]


async def test_format_takes_precedence_over_options(api: httpx.AsyncClient) -> None:
    """Clause 6.3.7: when format is present, it decides the representation, not options."""
    room = await _room(api)
    response = await _retrieve(api, room, options="keyValues", format="normalized", pick="name")
    assert response.status_code == 200, response.text
    assert response.json() == {"name": prop("aula")}
    listed = await _query(api, type="Room", options="normalized", format="concise", pick="name")
    assert listed == [{"name": "aula"}]


async def test_geometry_property_needs_a_geojson_answer(api: httpx.AsyncClient) -> None:
    """Clause 6.3.15: geometryProperty selects the geometry of a GeoJSON representation; it
    has no meaning for another one."""
    room = await _room(api)
    retrieved = await _retrieve(api, room, geometryProperty="location")
    assert_problem(retrieved, 400, "BadRequestData")
    queried = await api.get("/entities", params={"type": "Room", "geometryProperty": "location"})
    assert_problem(queried, 400, "BadRequestData")
    feature = await api.get(
        f"/entities/{room}", params={"geometryProperty": "location"}, headers=GEO_JSON
    )
    assert feature.status_code == 200, feature.text


async def test_geojson_answers_hold_the_context_in_the_body(api: httpx.AsyncClient) -> None:
    """Clause 6.3.15: a GeoJSON Feature or FeatureCollection carries its @context as a
    member of the body."""
    room = await _room(api)
    feature = await api.get(f"/entities/{room}", headers=GEO_JSON)
    assert feature.json()["type"] == "Feature"
    assert "ngsi-ld-core-context" in str(feature.json()["@context"])
    collection = await api.get("/entities", params={"type": "Room"}, headers=GEO_JSON)
    assert collection.json()["type"] == "FeatureCollection"
    assert "ngsi-ld-core-context" in str(collection.json()["@context"])


@pytest.mark.parametrize(
    "georel",
    ["near", "near;maxDistance==10;minDistance==1", "near;maxDistance==10;maxDistance==20"],
)
async def test_near_takes_exactly_one_distance(api: httpx.AsyncClient, georel: str) -> None:
    """Clause 4.10: near is qualified by one maxDistance or one minDistance."""
    params = {"type": "Room", "georel": georel, "geometry": "Point", "coordinates": "[11,43]"}
    assert_problem(await api.get("/entities", params=params), 400, "BadRequestData")


async def test_near_measures_from_any_reference_geometry(api: httpx.AsyncClient) -> None:
    """Clause 4.10: the reference geometry of near may be any GeoJSON geometry; distance is
    to its nearest point."""
    close = await _room(api, location=geo(11.2505, 43.5))
    await _room(api, location=geo(11.30, 43.5))
    params = {
        "type": "Room",
        "georel": "near;maxDistance==1000",
        "geometry": "LineString",
        "coordinates": "[[11.25,43.0],[11.25,44.0]]",
    }
    assert [item["id"] for item in await _query(api, **params)] == [close]


async def test_malformed_csf_is_400(api: httpx.AsyncClient) -> None:
    """Clause 4.9 and 6.4.3.2: csf is written in the query language; a malformed one is
    BadRequestData, a well-formed one is accepted."""
    await _room(api)
    bad = await api.get("/entities", params={"type": "Room", "csf": "p==="})
    assert_problem(bad, 400, "BadRequestData")
    posted = await api.post(
        "/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Room"}], "csf": ")"},
    )
    assert_problem(posted, 400, "BadRequestData")
    assert len(await _query(api, type="Room", csf="p==1")) == 1


async def test_an_entity_selector_names_a_type(api: httpx.AsyncClient) -> None:
    """Clause 5.2.33: type is mandatory in an EntitySelector, id alone is not enough."""
    room = await _room(api)
    for selector in ({"id": room}, {"idPattern": ".*"}):
        body = {"type": "Query", "entities": [selector]}
        assert_problem(await api.post("/entityOperations/query", json=body), 400, "BadRequestData")


async def test_entity_selector_ids_and_their_precedence(api: httpx.AsyncClient) -> None:
    """Clause 5.2.33: id may list several entity ids, and takes precedence over idPattern."""
    first, second = await _room(api), await _room(api)
    await _room(api)
    selector = {"id": [first, second], "idPattern": "^nothing$", "type": "Room"}
    body = {"type": "Query", "entities": [selector], "pick": "id"}
    response = await api.post("/entityOperations/query", json=body)
    assert response.status_code == 200, response.text
    assert sorted(item["id"] for item in response.json()) == sorted([first, second])
    by_url = await _query(api, id=first, idPattern="^nothing$", pick="id")
    assert by_url == [{"id": first}]


async def test_type_star_selects_every_type(api: httpx.AsyncClient) -> None:
    """Clause 4.17 and 6.4.3.2: type=* matches entities of any type."""
    room = await _room(api)
    lamp = await create(api, entity("Lamp"))
    assert sorted(item["id"] for item in await _query(api, type="*", pick="id")) == sorted(
        [room, lamp]
    )
    body = {"type": "Query", "entities": [{"type": "*"}], "pick": "id"}
    posted = await api.post("/entityOperations/query", json=body)
    assert sorted(item["id"] for item in posted.json()) == sorted([room, lamp])


async def test_dataset_id_selects_attribute_instances(api: httpx.AsyncClient) -> None:
    """Clause 4.5.5 and 6.5.3.1/6.4.3.2: datasetId shows only the instances it lists, @none
    standing for the default instance."""
    raw = "urn:ngsi-ld:Dataset:raw"
    room = await _room(
        api,
        temperature=[prop(21), prop(20.6, datasetId=raw), prop(21.2, datasetId="urn:ngsi-ld:D:b")],
    )
    only_raw = await _retrieve(api, room, datasetId=raw, pick="temperature")
    assert only_raw.json() == {"temperature": prop(20.6, datasetId=raw)}
    both = await _retrieve(api, room, datasetId=f"@none,{raw}", pick="temperature")
    assert both.json() == {"temperature": [prop(21), prop(20.6, datasetId=raw)]}
    listed = await _query(api, type="Room", datasetId="@none", pick="temperature,name")
    assert listed == [{"temperature": prop(21), "name": prop("aula")}]
    assert_problem(await _retrieve(api, room, datasetId="not a uri"), 400, "BadRequestData")


async def test_paging_links_keep_the_request_parameters_in_order(api: httpx.AsyncClient) -> None:
    """Clause 6.3.10 and 5.5.9: rel="next" and rel="prev" links repeat the request's
    parameters in their order, percent-encoded, with the page's offset."""
    for _ in range(3):
        await _room(api)
    response = await api.get("/entities?offset=1&type=Room&limit=1&q=name==%22aula%22&pick=id,name")
    assert response.status_code == 200, response.text
    links = {
        rel: url
        for header in response.headers.get_list("link")
        for url, rel in LINK_PART.findall(header)
    }
    assert set(links) == {"next", "prev"}
    path, _, query = links["next"].partition("?")
    assert path == "/ngsi-ld/v1/entities"
    assert query == "offset=2&type=Room&limit=1&q=name%3D%3D%22aula%22&pick=id%2Cname"
    assert unquote(links["prev"].partition("?")[2]).startswith("offset=0&type=Room&limit=1&")


async def test_not_match_negates_the_pattern(api: httpx.AsyncClient) -> None:
    """Clause 4.9: !~= selects the entities whose value does not match the pattern."""
    aula = await _room(api)
    lab = await _room(api, name=prop("laboratorio"))
    assert [item["id"] for item in await _query(api, q="name!~=^au", pick="id")] == [lab]
    assert [item["id"] for item in await _query(api, q="name~=^au", pick="id")] == [aula]


async def test_unknown_entity_is_404_whatever_the_projection(api: httpx.AsyncClient) -> None:
    """Clause 5.7.1.4: a projection never turns an unknown entity into an answer."""
    await _room(api)
    assert_problem(await _retrieve(api, new_id("Room"), pick="id"), 404, "ResourceNotFound")


async def test_source_identity_describes_the_broker(api: httpx.AsyncClient) -> None:
    """Clause 5.15 and 5.2.40: GET /info/sourceIdentity answers a ContextSourceIdentity with
    its alias (naming the tenant), uptime as an ISO 8601 duration and current time."""
    await _room(api)
    response = await api.get("/info/sourceIdentity")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "ContextSourceIdentity"
    assert body["id"].startswith("urn:ngsi-ld:ContextSourceIdentity:")
    assert body["contextSourceAlias"].endswith(api.headers["NGSILD-Tenant"])
    assert re.fullmatch(r"P\d+DT\d+H\d+M[\d.]+S", body["contextSourceUptime"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["contextSourceTimeAt"])
    again = await api.get("/info/sourceIdentity")
    assert again.json()["id"] == body["id"]


async def test_a_version_preference_is_answered(api: httpx.AsyncClient) -> None:
    """Clause 6.3.21 (V1.9): `Prefer: ngsi-ld=<version>` is answered with
    Preference-Applied naming the version the answer follows; without it there is none."""
    room = await _room(api)
    preferred = await api.get(f"/entities/{room}", headers={"Prefer": "ngsi-ld=1.8"})
    assert preferred.status_code == 200, preferred.text
    assert preferred.headers["Preference-Applied"] == "ngsi-ld=1.8"
    queried = await api.get("/entities", params={"type": "Room"}, headers={"Prefer": "ngsi-ld=1.6"})
    assert queried.headers["Preference-Applied"] == "ngsi-ld=1.8"
    plain = await api.get(f"/entities/{room}")
    assert "Preference-Applied" not in plain.headers
