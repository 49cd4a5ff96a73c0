"""The Temporal Representation of an entity (clause 4.5.7): each attribute an array of its
instances, each with its instanceId, names compacted with the caller's @context; and the
Simplified Temporal Representation (clause 4.5.9, `options=temporalValues`): per attribute
its values paired with the time of each instance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from context_broker._attributes import VALUE_MEMBER, RenderOptions, render_instance
from context_broker._jsonld import TermMap
from context_broker._temporal._query import RECORDED_AT
from context_broker._time import format_datetime

Document = dict[str, Any]
# Clause 4.5.9: the member holding an attribute's value pairs, by the instances' type.
VALUES_MEMBER = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "JsonProperty": "jsons",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}


def temporal_entity(
    entity_id: str,
    types: list[str],
    records: Iterable[Document],
    terms: TermMap,
    options: RenderOptions,
    *,
    temporal_values: bool = False,
    timeproperty: str = "observedAt",
) -> Document:
    """The entity's temporal representation from its recorded instances (`_records.py`),
    grouped by attribute in the order given; an attribute's instances keep their order."""
    compacted = [terms.compact(iri) for iri in types]
    out: Document = {"id": entity_id, "type": compacted[0] if len(compacted) == 1 else compacted}
    by_attribute: dict[str, list[Document]] = {}
    for record in records:
        by_attribute.setdefault(record["attr"], []).append(record)
    for name, recorded in by_attribute.items():
        if temporal_values:
            out[terms.compact(name)] = _simplified(recorded, terms, timeproperty)
        else:
            out[terms.compact(name)] = [_instance(record, terms, options) for record in recorded]
    return out


def _instance(record: Document, terms: TermMap, options: RenderOptions) -> Document:
    rendered = render_instance(record["instance"], terms, options)
    if not isinstance(rendered, dict):  # concise: a bare value
        rendered = {"value": rendered}
    rendered["instanceId"] = record["_id"]
    return rendered


def _simplified(recorded: list[Document], terms: TermMap, timeproperty: str) -> Any:
    """Clause 4.5.9: `{"type": kind, "values": [[value, time], ...]}`, one per datasetId
    (with its datasetId) when the attribute has several."""
    by_dataset: dict[str | None, list[Document]] = {}
    for record in recorded:
        by_dataset.setdefault(record["instance"].get("datasetId"), []).append(record)
    rendered = []
    for dataset_id, records in by_dataset.items():
        kind = records[-1]["instance"]["type"]
        plain = RenderOptions(format="keyValues")
        pairs = [
            [_plain_value(record["instance"], terms, plain), _time_of(record, timeproperty)]
            for record in records
        ]
        simplified: Document = {"type": kind, VALUES_MEMBER[kind]: pairs}
        if dataset_id is not None:
            simplified["datasetId"] = dataset_id
        rendered.append(simplified)
    return rendered[0] if len(rendered) == 1 else rendered


def _plain_value(instance: Document, terms: TermMap, options: RenderOptions) -> Any:
    value = render_instance(instance, terms, options)
    member = VALUE_MEMBER[instance["type"]]
    if isinstance(value, dict) and set(value) == {member}:
        return value[member]  # keyValues keeps some members keyed; the pair holds the value
    return value


def _time_of(record: Document, timeproperty: str) -> str:
    """The instance's time in the pair: its timeproperty, or when it was written for an
    instance without observedAt."""
    instance = record["instance"]
    if timeproperty == "observedAt" and "observedAt" in instance:
        text = instance.get("ot")
        return text if isinstance(text, str) else format_datetime(instance["observedAt"])
    at: datetime = record[RECORDED_AT]
    return format_datetime(at)


def aggregated_entity(
    entity_id: str, types: list[str], attributes: dict[str, Document], terms: TermMap
) -> Document:
    """The Aggregated Temporal Representation (clause 4.5.19) of the entity, from each
    attribute's aggregated member (`_aggregation.aggregated_attribute`) by expanded name."""
    compacted = [terms.compact(iri) for iri in types]
    out: Document = {"id": entity_id, "type": compacted[0] if len(compacted) == 1 else compacted}
    for name, aggregated in attributes.items():
        out[terms.compact(name)] = aggregated
    return out
