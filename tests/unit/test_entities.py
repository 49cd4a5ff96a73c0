"""The pure entity operations of clause 5.6 on stored documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from context_broker._attributes import RenderOptions
from context_broker._entities import (
    Document,
    append_attributes,
    build_document,
    delete_attribute,
    entity_id_of,
    merge_entity,
    parse_fragment,
    partial_update_attribute,
    render_entity,
    replace_attribute,
    replace_entity,
    update_attributes,
)
from context_broker._errors import BadRequestData, ResourceNotFound
from context_broker._jsonld import DEFAULT_VOCAB, core_term_map
from context_broker._names import encode_field

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
TERMS = core_term_map()
ID = "urn:ngsi-ld:Sensor:1"
GPS = "urn:ngsi-ld:Dataset:gps"
A = encode_field(DEFAULT_VOCAB + "a")  # the stored field of attribute "a"


def _doc(**attrs: Any) -> Document:
    return build_document({"id": ID, "type": "Sensor", **attrs}, TERMS, T0)


def _show(doc: Document, **options: Any) -> dict[str, Any]:
    return render_entity(doc, TERMS, RenderOptions(**options))


def _fragment(payload: dict[str, Any], *, allow_null: bool = False) -> Any:
    return parse_fragment(payload, TERMS, T1, allow_null=allow_null)


def test_build_document_stores_expanded_names_in_order() -> None:
    doc = _doc(b=1, a={"value": 2, "datasetId": GPS})
    assert doc["_id"] == ID
    assert doc["type"] == [DEFAULT_VOCAB + "Sensor"]
    assert doc["an"] == [DEFAULT_VOCAB + "b", DEFAULT_VOCAB + "a"]
    assert doc["v"] == 1
    assert list(_show(doc)) == ["id", "type", "b", "a"]


@pytest.mark.parametrize(
    "payload",
    [{"type": "Sensor"}, {"id": "nope", "type": "Sensor"}, [], {"id": ID}, {"id": ID, "type": []}],
)
def test_build_document_rejects_entities_without_uri_id_or_type(payload: Any) -> None:
    with pytest.raises(BadRequestData):
        build_document(payload, TERMS, T0)


def test_entity_id_accepts_the_json_ld_form() -> None:
    assert entity_id_of({"@id": ID}) == ID


def test_append_without_overwrite_reports_the_attributes_kept() -> None:
    doc = _doc(a=1)
    outcome = append_attributes(doc, _fragment({"a": 2, "b": 3}), T1, no_overwrite=True)
    assert outcome.updated == [DEFAULT_VOCAB + "b"]
    assert [name for name, _ in outcome.not_updated] == [DEFAULT_VOCAB + "a"]
    assert _show(doc, format="keyValues") == {"id": ID, "type": "Sensor", "a": 1, "b": 3}
    assert doc["v"] == 2


def test_append_keeps_the_creation_time_of_replaced_attributes() -> None:
    doc = _doc(a=1)
    append_attributes(doc, _fragment({"a": 2}), T1, no_overwrite=False)
    shown = _show(doc, sys_attrs=True)
    assert shown["a"]["createdAt"] == "2026-01-31T12:00:00.000Z"
    assert shown["a"]["modifiedAt"] == "2026-01-31T12:05:00.000Z"


def test_update_changes_only_existing_instances() -> None:
    doc = _doc(a=[{"value": 1}, {"value": 2, "datasetId": GPS}])
    outcome = update_attributes(doc, _fragment({"a": {"value": 5, "datasetId": GPS}, "b": 1}), T1)
    assert outcome.updated == [DEFAULT_VOCAB + "a"]
    assert [name for name, _ in outcome.not_updated] == [DEFAULT_VOCAB + "b"]
    assert _show(doc, format="concise")["a"] == [1, {"value": 5, "datasetId": GPS}]


def test_update_of_nothing_known_leaves_the_document_untouched() -> None:
    doc = _doc(a=1)
    update_attributes(doc, _fragment({"b": 1}), T1)
    assert doc["v"] == 1 and doc["modifiedAt"] == T0


def test_merge_merges_members_and_deletes_nulls() -> None:
    doc = _doc(a={"value": 1, "unitCode": "CEL", "s": 1, "t": 2}, b=2, c=3)
    fragment = _fragment(
        {"a": {"value": 9, "s": "urn:ngsi-ld:null", "u": 4}, "b": "urn:ngsi-ld:null", "c": None},
        allow_null=True,
    )
    merge_entity(doc, fragment, T1)
    assert _show(doc, format="concise") == {
        "id": ID,
        "type": "Sensor",
        "a": {"value": 9, "unitCode": "CEL", "t": 2, "u": 4},
    }


def test_merge_adds_types_and_replaces_scope() -> None:
    doc = _doc(scope="/Toscana")
    merge_entity(doc, _fragment({"type": "Device", "scope": "/Toscana/Prato"}), T1)
    assert _show(doc)["type"] == ["Sensor", "Device"]
    assert _show(doc)["scope"] == "/Toscana/Prato"


def test_replace_entity_keeps_only_the_creation_time() -> None:
    doc = _doc(a=1)
    new = build_document({"id": ID, "type": "Device", "b": 2}, TERMS, T1)
    replaced = replace_entity(doc, new, T1)
    assert replaced["createdAt"] == T0 and replaced["modifiedAt"] == T1
    assert replaced["v"] == 2
    assert _show(replaced, format="keyValues") == {"id": ID, "type": "Device", "b": 2}


def test_partial_update_merges_into_one_instance() -> None:
    doc = _doc(a=[{"value": 1, "s": 1}, {"value": 2, "datasetId": GPS}])
    partial_update_attribute(
        doc, "a", A, {"observedAt": "2026-02-01T00:00:00Z", "datasetId": GPS}, TERMS, T1
    )
    partial_update_attribute(doc, "a", A, {"s": 5}, TERMS, T1)
    assert _show(doc, format="concise")["a"] == [
        {"value": 1, "s": 5},
        {"value": 2, "observedAt": "2026-02-01T00:00:00Z", "datasetId": GPS},
    ]


def test_partial_update_of_a_missing_instance_is_not_found() -> None:
    doc = _doc(a=1)
    with pytest.raises(ResourceNotFound):
        partial_update_attribute(doc, "b", "b", {"value": 1}, TERMS, T1)


def test_replace_attribute_requires_the_instance() -> None:
    doc = _doc(a=1)
    new = parse_fragment({"a": {"value": 2, "datasetId": GPS}}, TERMS, T1).attrs[A]
    with pytest.raises(ResourceNotFound):
        replace_attribute(doc, "a", A, new, T1)
    replace_attribute(doc, "a", A, _fragment({"a": {"value": 3, "u": 1}}).attrs[A], T1)
    assert _show(doc, format="concise")["a"] == {"value": 3, "u": 1}


def test_delete_attribute_by_dataset_id_then_all() -> None:
    doc = _doc(a=[{"value": 1}, {"value": 2, "datasetId": GPS}], b=1)
    delete_attribute(doc, "a", A, T1, dataset_id=GPS, delete_all=False)
    assert _show(doc, format="concise")["a"] == 1
    with pytest.raises(ResourceNotFound):
        delete_attribute(doc, "a", A, T1, dataset_id=GPS, delete_all=False)
    delete_attribute(doc, "a", A, T1, dataset_id=None, delete_all=True)
    assert "a" not in _show(doc)
    assert doc["an"] == [DEFAULT_VOCAB + "b"]
    with pytest.raises(ResourceNotFound):
        delete_attribute(doc, "a", A, T1, dataset_id=None, delete_all=True)


def test_render_entity_restricts_to_the_attributes_asked_for() -> None:
    doc = _doc(a=1, b=2)
    shown = render_entity(doc, TERMS, RenderOptions(), frozenset({DEFAULT_VOCAB + "b"}))
    assert shown == {"id": ID, "type": "Sensor", "b": {"type": "Property", "value": 2}}


def test_render_entity_shows_system_times_except_in_simplified() -> None:
    doc = _doc(a=1)
    assert _show(doc, sys_attrs=True)["createdAt"] == "2026-01-31T12:00:00.000Z"
    assert "createdAt" not in _show(doc, sys_attrs=True, format="keyValues")
