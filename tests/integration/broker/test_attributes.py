"""Attribute operations (clause 5.6.2-5.6.5, 5.6.19 over clause 6.6-6.7) and the attribute
kinds of clause 4.5 (Property, Relationship, GeoProperty, LanguageProperty, VocabProperty,
JsonProperty, ListProperty, ListRelationship)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import DEFAULT_VOCAB, assert_problem, create, entity, fetch, new_id, prop, rel

pytestmark = pytest.mark.integration


async def _sensor(api: httpx.AsyncClient, **attrs: Any) -> str:
    return await create(api, entity(**attrs))


# --- append (POST /entities/{id}/attrs), clause 5.6.3 -------------------------------------


async def test_append_adds_new_and_overwrites_existing_attributes(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, a=prop(1))
    response = await api.post(f"/entities/{entity_id}/attrs", json={"a": prop(2), "b": prop(3)})
    assert response.status_code == 204, response.text
    body = await fetch(api, entity_id)
    assert body["a"] == prop(2)
    assert body["b"] == prop(3)


async def test_append_with_no_overwrite_keeps_existing_and_answers_207(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.6.3.1: options=noOverwrite; 207 with an UpdateResult naming what was kept."""
    entity_id = await _sensor(api, a=prop(1))
    response = await api.post(
        f"/entities/{entity_id}/attrs",
        params={"options": "noOverwrite"},
        json={"a": prop(2), "b": prop(3)},
    )
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["updated"] == ["b"]
    assert [item["attributeName"] for item in result["notUpdated"]] == ["a"]
    assert all(isinstance(item["reason"], str) for item in result["notUpdated"])
    body = await fetch(api, entity_id)
    assert body["a"] == prop(1)
    assert body["b"] == prop(3)


async def test_append_with_an_unknown_option_is_400(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, a=prop(1))
    response = await api.post(
        f"/entities/{entity_id}/attrs", params={"options": "overwriteAll"}, json={"a": prop(2)}
    )
    assert_problem(response, 400, "InvalidRequest")  # an options value the spec does not list


async def test_append_to_a_missing_entity_is_404(api: httpx.AsyncClient) -> None:
    await _sensor(api)
    response = await api.post(f"/entities/{new_id()}/attrs", json={"a": prop(2)})
    assert_problem(response, 404, "ResourceNotFound")


# --- update (PATCH /entities/{id}/attrs), clause 5.6.2 ------------------------------------


async def test_update_replaces_existing_attributes(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, a=prop(1, unitCode="CEL", accuracy=prop(0.1)), b=prop(2))
    response = await api.patch(f"/entities/{entity_id}/attrs", json={"a": prop(5)})
    assert response.status_code == 204, response.text
    body = await fetch(api, entity_id)
    assert body["a"] == prop(5)  # replaced whole: unitCode and sub-attribute are gone
    assert body["b"] == prop(2)


async def test_update_of_unknown_attributes_answers_207_and_changes_the_known(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.6.3.2: 207 with an UpdateResult when some attributes do not exist."""
    entity_id = await _sensor(api, a=prop(1))
    response = await api.patch(f"/entities/{entity_id}/attrs", json={"a": prop(2), "nope": prop(3)})
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["updated"] == ["a"]
    assert [item["attributeName"] for item in result["notUpdated"]] == ["nope"]
    body = await fetch(api, entity_id)
    assert body["a"] == prop(2)
    assert "nope" not in body


async def test_update_may_change_an_attribute_kind(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, owner=prop("Comune di Prato"))
    response = await api.patch(
        f"/entities/{entity_id}/attrs", json={"owner": rel("urn:ngsi-ld:Organization:prato")}
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["owner"] == rel("urn:ngsi-ld:Organization:prato")


async def test_update_of_a_missing_entity_is_404(api: httpx.AsyncClient) -> None:
    await _sensor(api)
    response = await api.patch(f"/entities/{new_id()}/attrs", json={"a": prop(2)})
    assert_problem(response, 404, "ResourceNotFound")


# --- partial attribute update (PATCH /entities/{id}/attrs/{attr}), clause 5.6.4 -----------


async def test_partial_update_of_the_value_keeps_other_members(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(
        api, temperature=prop(20, unitCode="CEL", accuracy=prop(0.5), source=prop("arpat"))
    )
    response = await api.patch(f"/entities/{entity_id}/attrs/temperature", json={"value": 22})
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["temperature"] == prop(
        22, unitCode="CEL", accuracy=prop(0.5), source=prop("arpat")
    )


async def test_partial_update_of_observed_at_alone_keeps_the_value(
    api: httpx.AsyncClient,
) -> None:
    entity_id = await _sensor(api, temperature=prop(20))
    response = await api.patch(
        f"/entities/{entity_id}/attrs/temperature",
        json={"observedAt": "2026-03-01T09:00:00Z"},
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["temperature"] == prop(
        20, observedAt="2026-03-01T09:00:00Z"
    )


async def test_partial_update_merges_sub_attributes(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, temperature=prop(20, accuracy=prop(0.5), source=prop("a")))
    response = await api.patch(
        f"/entities/{entity_id}/attrs/temperature",
        json={"accuracy": prop(0.2), "calibrated": prop(True)},
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["temperature"] == prop(
        20, accuracy=prop(0.2), source=prop("a"), calibrated=prop(True)
    )


async def test_partial_update_deletes_sub_attributes_set_to_ngsi_ld_null(
    api: httpx.AsyncClient,
) -> None:
    entity_id = await _sensor(api, temperature=prop(20, accuracy=prop(0.5), source=prop("a")))
    response = await api.patch(
        f"/entities/{entity_id}/attrs/temperature",
        json={"value": 21, "accuracy": "urn:ngsi-ld:null"},
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["temperature"] == prop(21, source=prop("a"))


async def test_partial_update_of_one_dataset_instance(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(
        api,
        speed=[prop(10), prop(11, datasetId="urn:ngsi-ld:Dataset:gps")],
    )
    response = await api.patch(
        f"/entities/{entity_id}/attrs/speed",
        json={"value": 12, "datasetId": "urn:ngsi-ld:Dataset:gps"},
    )
    assert response.status_code == 204, response.text
    instances = (await fetch(api, entity_id))["speed"]
    assert instances == [prop(10), prop(12, datasetId="urn:ngsi-ld:Dataset:gps")]


async def test_partial_update_of_a_missing_attribute_is_404(api: httpx.AsyncClient) -> None:
    """Clause 5.6.4.4: ResourceNotFound when the attribute (or datasetId) does not exist."""
    entity_id = await _sensor(api, a=prop(1))
    response = await api.patch(f"/entities/{entity_id}/attrs/nope", json={"value": 1})
    assert_problem(response, 404, "ResourceNotFound")
    response = await api.patch(
        f"/entities/{entity_id}/attrs/a", json={"value": 1, "datasetId": "urn:ngsi-ld:Dataset:x"}
    )
    assert_problem(response, 404, "ResourceNotFound")
    assert (await fetch(api, entity_id))["a"] == prop(1)


# --- replace attribute (PUT /entities/{id}/attrs/{attr}), clause 5.6.19 --------------------


async def test_replace_attribute_replaces_it_whole(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, a=prop(1, unitCode="CEL", accuracy=prop(0.5)), b=prop(2))
    before = await fetch(api, entity_id, options="sysAttrs")
    response = await api.put(f"/entities/{entity_id}/attrs/a", json=prop(7, unitCode="FAH"))
    assert response.status_code == 204, response.text
    after = await fetch(api, entity_id, options="sysAttrs")
    assert {k: v for k, v in after["a"].items() if not k.endswith("At")} == prop(7, unitCode="FAH")
    assert after["a"]["createdAt"] == before["a"]["createdAt"]
    assert after["b"]["value"] == 2


async def test_replace_of_a_missing_attribute_is_404(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, a=prop(1))
    response = await api.put(f"/entities/{entity_id}/attrs/nope", json=prop(7))
    assert_problem(response, 404, "ResourceNotFound")


# --- delete attribute (DELETE /entities/{id}/attrs/{attr}), clause 5.6.5 -------------------


async def test_delete_attribute_removes_the_default_instance(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(api, a=prop(1), b=prop(2))
    response = await api.delete(f"/entities/{entity_id}/attrs/a")
    assert response.status_code == 204, response.text
    body = await fetch(api, entity_id)
    assert "a" not in body
    assert body["b"] == prop(2)
    assert_problem(await api.delete(f"/entities/{entity_id}/attrs/a"), 404, "ResourceNotFound")


async def test_delete_attribute_by_dataset_id_and_delete_all(api: httpx.AsyncClient) -> None:
    """Clause 6.7.3.2: datasetId removes one instance, deleteAll=true every instance."""
    gps, radar = "urn:ngsi-ld:Dataset:gps", "urn:ngsi-ld:Dataset:radar"
    entity_id = await _sensor(
        api, speed=[prop(10), prop(11, datasetId=gps), prop(12, datasetId=radar)]
    )
    response = await api.delete(f"/entities/{entity_id}/attrs/speed", params={"datasetId": gps})
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["speed"] == [prop(10), prop(12, datasetId=radar)]
    response = await api.delete(f"/entities/{entity_id}/attrs/speed", params={"datasetId": gps})
    assert_problem(response, 404, "ResourceNotFound")
    response = await api.delete(f"/entities/{entity_id}/attrs/speed", params={"deleteAll": "true"})
    assert response.status_code == 204, response.text
    assert "speed" not in await fetch(api, entity_id)


# --- attribute kinds, clause 4.5 ------------------------------------------------------------

KINDS: dict[str, dict[str, Any]] = {
    "property": prop({"street": "Via Roma 1", "city": "Prato"}),
    "relationship": rel("urn:ngsi-ld:Building:b1", objectType="Building"),
    "multi_relationship": rel(["urn:ngsi-ld:Person:a", "urn:ngsi-ld:Person:b"]),
    "geo_polygon": {
        "type": "GeoProperty",
        "value": {
            "type": "Polygon",
            "coordinates": [[[11.0, 43.8], [11.1, 43.8], [11.1, 43.9], [11.0, 43.8]]],
        },
    },
    "language": {"type": "LanguageProperty", "languageMap": {"it": "Duomo", "en": "Cathedral"}},
    "json": {"type": "JsonProperty", "json": {"@id": "not-expanded", "nested": [1, {"a": 2}]}},
    "list": {"type": "ListProperty", "valueList": [300, 300, 120, 6], "unitCode": "MMT"},
    "list_relationship": {
        "type": "ListRelationship",
        "objectList": [{"object": "urn:ngsi-ld:City:Prato"}, {"object": "urn:ngsi-ld:City:Pisa"}],
    },
    "vocab": {"type": "VocabProperty", "vocab": "commercial"},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_attribute_kind_round_trips_in_normalized_form(
    api: httpx.AsyncClient, kind: str
) -> None:
    entity_id = await _sensor(api, attr=KINDS[kind])
    assert (await fetch(api, entity_id))["attr"] == KINDS[kind]


async def test_vocab_property_terms_are_stored_expanded_and_shown_compacted(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.20: vocab values are IRIs, expanded on input and compacted on output."""
    entity_id = await _sensor(api, category={"type": "VocabProperty", "vocab": ["barn", "farm"]})
    assert (await fetch(api, entity_id))["category"]["vocab"] == ["barn", "farm"]
    response = await api.get(
        f"/entities/{entity_id}",
        params={"attrs": "category"},
        headers={"Accept": "application/ld+json"},
    )
    assert response.json()["category"]["vocab"] == ["barn", "farm"]


async def test_vocab_property_given_as_a_full_iri_is_kept(api: httpx.AsyncClient) -> None:
    iri = "https://example.org/vocab#barn"
    entity_id = await _sensor(api, category={"type": "VocabProperty", "vocab": iri})
    assert (await fetch(api, entity_id))["category"]["vocab"] == iri


async def test_vocabulary_property_iri_type_is_accepted(api: httpx.AsyncClient) -> None:
    """Clause 4.5.20: the core context names the kind VocabularyProperty too."""
    entity_id = await _sensor(api, category={"type": "VocabularyProperty", "vocab": "barn"})
    assert (await fetch(api, entity_id))["category"] == {"type": "VocabProperty", "vocab": "barn"}


async def test_language_property_with_lang_is_returned_as_a_property(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.15: with lang, a LanguageProperty becomes a Property with a lang member."""
    entity_id = await _sensor(api, name=KINDS["language"])
    assert (await fetch(api, entity_id, lang="en"))["name"] == {
        "type": "Property",
        "value": "Cathedral",
        "lang": "en",
    }
    assert (await fetch(api, entity_id, lang="fr;q=0.9,it;q=0.5"))["name"]["lang"] == "it"


async def test_language_property_with_no_match_falls_back_to_none(api: httpx.AsyncClient) -> None:
    entity_id = await _sensor(
        api, name={"type": "LanguageProperty", "languageMap": {"@none": "Duomo", "en": "Dome"}}
    )
    assert (await fetch(api, entity_id, lang="de"))["name"]["value"] == "Duomo"


async def test_sub_attributes_of_every_depth_are_kept(api: httpx.AsyncClient) -> None:
    attr = prop(
        20,
        accuracy=prop(0.5, method=prop("calibrated", by=rel("urn:ngsi-ld:Person:x"))),
        providedBy=rel("urn:ngsi-ld:Device:d1"),
        measuredAt={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, 43]}},
    )
    entity_id = await _sensor(api, temperature=attr)
    assert (await fetch(api, entity_id))["temperature"] == attr


async def test_multi_instance_attributes_keep_each_dataset_id(api: httpx.AsyncClient) -> None:
    """Clause 4.5.5: instances of one attribute are told apart by datasetId."""
    instances = [prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:a")]
    entity_id = await _sensor(api, speed=instances)
    assert (await fetch(api, entity_id))["speed"] == instances
    response = await api.post(
        f"/entities/{entity_id}/attrs", json={"speed": prop(3, datasetId="urn:ngsi-ld:Dataset:b")}
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["speed"] == [
        *instances,
        prop(3, datasetId="urn:ngsi-ld:Dataset:b"),
    ]


async def test_two_instances_with_the_same_dataset_id_are_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/entities",
        json=entity(speed=[prop(1, datasetId="urn:a:b"), prop(2, datasetId="urn:a:b")]),
    )
    assert_problem(response, 400, "BadRequestData")


async def test_names_without_a_user_context_expand_to_the_default_vocab(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.2 (core context @vocab): a term no context defines takes the default vocab."""
    entity_id = await _sensor(api, temperature=prop(1))
    response = await api.get(
        f"/entities/{entity_id}",
        headers={"Accept": "application/ld+json"},
        params={"attrs": DEFAULT_VOCAB + "temperature"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["temperature"] == prop(1)
