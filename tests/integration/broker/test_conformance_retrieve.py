"""Retrieve Entity and Query Entities as ETSI GS CIM 009 V1.8 words them (issue #16, group
"Retrieve and query"): projection, parameter checks, instance selection, paging links and the
GeoJSON representation, over real HTTP against the real store."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from ._helpers import (
    CORE_CONTEXT,
    DEFAULT_VOCAB,
    LD,
    assert_problem,
    create,
    entity,
    geo,
    new_id,
    prop,
)

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
    """Clause 6.3.21 and 4.3.6.8 (V1.9): `Prefer: ngsi-ld=<version>` is answered with
    Preference-Applied naming the version the answer conforms to: the one preferred when the
    broker knows it, its own (1.9) for a later one; without a preference there is none."""
    room = await _room(api)
    for preferred, applied in (("1.9", "1.9"), ("1.10", "1.9"), ("2.0", "1.9"), ("1.8", "1.8")):
        answer = await api.get(f"/entities/{room}", headers={"Prefer": f"ngsi-ld={preferred}"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["Preference-Applied"] == f"ngsi-ld={applied}", preferred
        assert answer.json()["temperature"] == prop(21)
    plain = await api.get(f"/entities/{room}")
    assert "Preference-Applied" not in plain.headers


def _recent_entity() -> dict[str, Any]:
    """An entity using members of V1.3 to V1.9, each with a fallback in clause 4.3.6.8."""
    return entity(
        "Room",
        scope="/campus/north",
        expiresAt="2099-01-01T00:00:00Z",
        temperature=[
            prop(21, unitCode="CEL", observedAt="2026-01-31T12:00:00Z"),
            prop(19, datasetId="urn:ngsi-ld:Dataset:backup"),
        ],
        settings={"type": "JsonProperty", "json": {"mode": "eco"}},
        category={"type": "VocabProperty", "vocab": "classroom"},
        readings={"type": "ListProperty", "valueList": [1, 2, 3]},
        neighbours={"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Room:a"]},
        partOf={"type": "Relationship", "object": "urn:ngsi-ld:Building:b", "objectType": "B"},
        label={"type": "LanguageProperty", "languageMap": {"it": "aula", "en": "room"}},
        occupancy=prop(4, expiresAt="2099-01-01T00:00:00Z"),
    )


async def test_an_earlier_version_gets_the_fallbacks_of_its_tables(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.3.6.8 Tables 4.3.6.8-1/2/3 (V1.9): for a preferred earlier version the
    entity is amended. For 1.6: expiresAt and objectType are removed; JsonProperty,
    VocabProperty and ListProperty are reformatted as Property, ListRelationship as
    Relationship; scope, datasetId, observedAt, unitCode and LanguageProperty (1.3, 1.4)
    stay."""
    payload = _recent_entity()
    room = await create(api, payload)
    answer = await api.get(
        f"/entities/{room}", params={"options": "sysAttrs"}, headers={"Prefer": "ngsi-ld=1.6"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "ngsi-ld=1.6"
    body = answer.json()
    assert "expiresAt" not in body and "expiresAt" not in body["occupancy"]
    assert body["scope"] == "/campus/north"
    assert body["settings"]["type"] == "Property"
    assert body["settings"]["value"] == {"mode": "eco"} and "json" not in body["settings"]
    assert (body["category"]["type"], body["category"]["value"]) == ("Property", "classroom")
    assert (body["readings"]["type"], body["readings"]["value"]) == ("Property", [1, 2, 3])
    assert body["neighbours"]["type"] == "Relationship"
    assert body["neighbours"]["object"] == ["urn:ngsi-ld:Room:a"]
    assert "objectType" not in body["partOf"]
    assert body["label"]["type"] == "LanguageProperty"
    assert {i.get("datasetId") for i in body["temperature"]} == {
        None,
        "urn:ngsi-ld:Dataset:backup",
    }
    native = await api.get(f"/entities/{room}", params={"options": "sysAttrs"})
    assert native.json()["settings"]["json"] == {"mode": "eco"}
    assert native.json()["expiresAt"] == "2099-01-01T00:00:00.000Z"


async def test_version_1_0_keeps_one_type_and_the_default_instance(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.3.6.8 notes 1-3 and the 1.3/1.4 rows (V1.9): for 1.0 an entity has one type
    (the first), each attribute one instance (the default), no scope, datasetId,
    observedAt or unitCode, and a LanguageProperty is reformatted as Property."""
    payload = _recent_entity()
    payload["type"] = ["Room", "Space"]
    room = await create(api, payload)
    answer = await api.get(f"/entities/{room}", headers={"Prefer": "ngsi-ld=1.0"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "ngsi-ld=1.0"
    body = answer.json()
    assert body["type"] == "Room"
    assert "scope" not in body
    assert body["temperature"] == prop(21)
    assert body["label"] == {"type": "Property", "value": {"it": "aula", "en": "room"}}


async def test_queries_are_amended_but_other_resources_are_not(api: httpx.AsyncClient) -> None:
    """Clause 4.3.6.8 (V1.9) amends entity data, in Query Entities (GET and POST) and in
    every representation (here concise and GeoJSON); a Subscription's expiresAt, a member
    since 1.0, stays."""
    room = await create(api, _recent_entity() | {"location": geo(11.25, 43.77)})
    old = {"Prefer": "ngsi-ld=1.7"}
    queried = await api.get("/entities", params={"id": room, "format": "concise"}, headers=old)
    assert queried.status_code == 200, queried.text
    assert queried.headers["Preference-Applied"] == "ngsi-ld=1.7"
    assert queried.json()[0]["settings"] == {"value": {"mode": "eco"}}
    posted = await api.post(
        "/entityOperations/query",
        json={"type": "Query", "entities": [{"id": room, "type": "Room"}]},
        headers=old,
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()[0]["readings"] == {"type": "Property", "value": [1, 2, 3]}
    features = await api.get(
        "/entities", params={"id": room}, headers=old | {"Accept": "application/geo+json"}
    )
    assert features.status_code == 200, features.text
    assert features.json()["features"][0]["properties"]["category"]["type"] == "Property"
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "expiresAt": "2099-01-01T00:00:00Z",
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    }
    created = await api.post("/subscriptions", json=subscription)
    assert created.status_code == 201, created.text
    shown = await api.get(created.headers["Location"].removeprefix("/ngsi-ld/v1"), headers=old)
    assert shown.status_code == 200, shown.text
    assert shown.json()["expiresAt"].startswith("2099-01-01T00:00:00")


@pytest.mark.parametrize(
    ("prefer", "applied"),
    [
        ("ngsi-ld=1.6;q=0.5, ngsi-ld=1.9", "ngsi-ld=1.6"),
        ("return=minimal, ngsi-ld=1.7", "ngsi-ld=1.7"),
        ('ngsi-ld="1.7"', "ngsi-ld=1.7"),
        ("NGSI-LD=1.8.1", "ngsi-ld=1.8"),
    ],
)
async def test_the_first_ngsi_ld_preference_counts(
    api: httpx.AsyncClient, prefer: str, applied: str
) -> None:
    """RFC 7240 section 2, as clause 6.3.21 (V1.9) uses it: among several preferences only
    the first `ngsi-ld` one counts, its parameters (such as q) are ignored, a value may be
    quoted and the token is case-insensitive."""
    room = await _room(api)
    answer = await api.get(f"/entities/{room}", headers={"Prefer": prefer})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == applied


@pytest.mark.parametrize(
    "prefer", ["ngsi-ld=1.3-1.6", "ngsi-ld=latest", "ngsi-ld", "ngsi-ld=0.9", "ngsi-ld=1"]
)
async def test_a_malformed_version_preference_is_ignored(
    api: httpx.AsyncClient, prefer: str
) -> None:
    """RFC 7240 section 2: a preference the server cannot understand is ignored, not an
    error: the answer is the ordinary one (200, the broker's version) without
    Preference-Applied. A range is not a version (clause 4.3.6.8: major.minor)."""
    room = await _room(api, settings={"type": "JsonProperty", "json": {"mode": "eco"}})
    answer = await api.get(f"/entities/{room}", headers={"Prefer": prefer})
    assert answer.status_code == 200, answer.text
    assert "Preference-Applied" not in answer.headers
    assert answer.json()["settings"]["json"] == {"mode": "eco"}


# --- Query selection over system attributes, expandValues, order by distance -----------


@pytest.mark.parametrize(
    "params",
    [
        {"q": 'modifiedAt>"2020-01-01T00:00:00Z"'},
        {"q": "createdAt|deletedAt"},
        {"attrs": "createdAt,modifiedAt"},
    ],
)
async def test_a_selection_of_system_attributes_alone_is_400(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 5.7.2.4 (V1.9): attrs and q count as a selection only when they name at least
    one attribute that is not a system one (createdAt, modifiedAt, deletedAt); without
    another selector the query is too wide: 400 BadRequestData, on GET and POST alike."""
    await _room(api)
    assert_problem(await api.get("/entities", params=params), 400, "BadRequestData")
    body = {"type": "Query", **params}
    answer = await api.post("/entityOperations/query", json=body)
    assert_problem(answer, 400, "BadRequestData")
    with_type = await api.get("/entities", params={"type": "Room", **params})
    assert with_type.status_code == 200, with_type.text


async def test_q_with_one_attribute_beside_system_ones_selects(api: httpx.AsyncClient) -> None:
    """Clause 5.7.2.4 (V1.9): a q that references one non-system attribute is a selection."""
    room = await _room(api)
    found = await _query(api, q='temperature>20|modifiedAt>"2020-01-01T00:00:00Z"')
    assert [item["id"] for item in found] == [room]


async def test_expand_values_compares_values_as_iris(api: httpx.AsyncClient) -> None:
    """Clause 4.9 and Table 6.4.3.2-1: the values q compares to the attributes listed in
    expandValues are expanded into IRIs with the request's @context before the query runs
    (here the core context, whose @vocab expands Shop)."""
    by_iri = await create(api, entity("Shop", category=prop(DEFAULT_VOCAB + "Grocery")))
    by_term = await create(api, entity("Shop", category=prop("Grocery")))
    expanded = await _query(api, type="Shop", q="category==Grocery", expandValues="category")
    assert [item["id"] for item in expanded] == [by_iri]
    literal = await _query(api, type="Shop", q='category=="Grocery"')
    assert [item["id"] for item in literal] == [by_term]
    other = await _query(api, type="Shop", q="category==Grocery", expandValues="name")
    assert [item["id"] for item in other] == [by_term]
    assert_problem(
        await api.get("/entities", params={"type": "Shop", "expandValues": ""}),
        400,
        "BadRequestData",
    )


async def test_expand_values_in_a_query_body(api: httpx.AsyncClient) -> None:
    """Clause 4.9 example 12 and Table 5.2.23-1: a Query's expandValues expands gender==Male
    with the Query's @context, which maps Male to an IRI."""
    context = [{"Male": "http://example.org/Male"}, CORE_CONTEXT]
    male = entity("Person", gender=prop("http://example.org/Male"))
    other = entity("Person", gender=prop("Male"))
    for payload in (male, other):
        await create(api, {**payload, "@context": context}, headers=LD)
    query = {
        "type": "Query",
        "entities": [{"type": "Person"}],
        "q": "gender==Male",
        "expandValues": "gender",
        "@context": context,
    }
    answer = await api.post("/entityOperations/query", json=query, headers=LD)
    assert answer.status_code == 200, answer.text
    assert [item["id"] for item in answer.json()] == [male["id"]]


async def _places(api: httpx.AsyncClient) -> list[str]:
    """Places at about 1, 50 and 300 km east of (11, 43), and one without a location."""
    ids = []
    for lon in (11.01, 14.7, 11.6):
        ids.append(await create(api, entity("Place", location=geo(lon, 43.0))))
    ids.append(await create(api, entity("Place", name=prop("nowhere"))))
    near, far, middle, nowhere = ids
    return [near, middle, far, nowhere]


async def test_order_by_distance(api: httpx.AsyncClient) -> None:
    """Clause 4.23 (V1.9, examples 8 and 9): `location;dist-asc` with orderFrom orders the
    entities nearest first, dist-desc farthest first; an entity without the GeoProperty
    comes after those with it (clause 4.23.2); paging cuts the ordered list."""
    near, middle, far, nowhere = await _places(api)
    origin = {"type": "Place", "orderFrom": "[11,43]"}
    ascending = await _query(api, **origin, orderBy="location;dist-asc")
    assert [item["id"] for item in ascending] == [near, middle, far, nowhere]
    descending = await _query(api, **origin, orderBy="location;dist-desc")
    assert [item["id"] for item in descending] == [far, middle, near, nowhere]
    response = await api.get(
        "/entities",
        params={
            **origin,
            "orderBy": "location;dist-asc",
            "limit": "1",
            "offset": "1",
            "count": "true",
        },
    )
    assert [item["id"] for item in response.json()] == [middle]
    assert response.headers["NGSILD-Results-Count"] == "4"
    line = await _query(
        api,
        type="Place",
        orderBy="location;dist-asc",
        orderGeometry="LineString",
        orderFrom="[[14.7,42.9],[14.7,43.1]]",
    )
    assert [item["id"] for item in line] == [far, middle, near, nowhere]


async def test_ordering_member_of_a_query(api: httpx.AsyncClient) -> None:
    """Table 5.2.23-1 and 5.2.43-1 (V1.9): a Query's ordering (orderBy array, geometry,
    coordinates) orders the answer as the URL parameters do, and replaces them: both is 400."""
    near, middle, far, nowhere = await _places(api)
    query = {
        "type": "Query",
        "entities": [{"type": "Place"}],
        "ordering": {
            "orderBy": ["location;dist-desc"],
            "geometry": "Point",
            "coordinates": [11, 43],
        },
    }
    answer = await api.post("/entityOperations/query", json=query)
    assert answer.status_code == 200, answer.text
    assert [item["id"] for item in answer.json()] == [far, middle, near, nowhere]
    by_id = {**query, "ordering": {"orderBy": ["id;desc"]}}
    answer = await api.post("/entityOperations/query", json=by_id)
    assert [item["id"] for item in answer.json()] == sorted(
        [near, middle, far, nowhere], reverse=True
    )
    twice = await api.post("/entityOperations/query", json=by_id, params={"orderBy": "id"})
    assert_problem(twice, 400, "BadRequestData")


@pytest.mark.parametrize(
    "params",
    [
        {"orderBy": "location;dist-asc"},
        {"orderBy": "location;dist-up", "orderFrom": "[11,43]"},
        {"orderBy": "id", "orderFrom": "[11,43]"},
        {"orderBy": "id;dist-asc", "orderFrom": "[11,43]"},
        {"orderBy": "location;dist-asc", "orderFrom": "11,43"},
        {"orderBy": "location;dist-asc", "orderFrom": "[11,43]", "orderGeometry": "Circle"},
        {"orderBy": "location;dist-asc", "orderFrom": "[11,43]", "collation": "it"},
        {"orderGeometry": "Point"},
    ],
)
async def test_malformed_distance_orderings_are_400(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 4.23.3 and Table 6.4.3.2-1: the directions are asc, desc, dist-asc and
    dist-desc; orderFrom is mandatory with an order by distance of a GeoProperty and
    belongs to one; orderGeometry is a GeoJSON type."""
    answer = await api.get("/entities", params={"type": "Place", **params})
    assert_problem(answer, 400, "BadRequestData")


@pytest.mark.parametrize(
    "ordering",
    [
        {"orderBy": ["location;dist-asc"]},
        {"orderBy": ["location;dist-asc"], "coordinates": "11,43"},
        {"orderBy": ["id;asc"], "geometry": 5},
        {"orderBy": ["id"], "direction": "asc"},
        {"collation": "it"},
        "id;asc",
    ],
)
async def test_malformed_ordering_members_are_400(api: httpx.AsyncClient, ordering: Any) -> None:
    """Table 5.2.43-1: orderBy is mandatory, coordinates a JSON array (mandatory with an
    order by distance), geometry a GeoJSON type; OrderingParams has no other members."""
    query = {"type": "Query", "entities": [{"type": "Place"}], "ordering": ordering}
    answer = await api.post("/entityOperations/query", json=query)
    assert_problem(answer, 400, "BadRequestData")
