"""The attribute instances an entity change adds to its history (clause 4.5.7): each
instance the write created or changed, as stored, recorded once with its instance id."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from context_broker._entities import instances_of
from context_broker._names import encode_field
from context_broker._subscriptions._changes import EntityChange
from context_broker._temporal._query import OBSERVED, RECORDED_AT

Document = dict[str, Any]
INSTANCE_ID_PREFIX = "urn:ngsi-ld:attribute:instance:"


def new_instance_id() -> str:
    return INSTANCE_ID_PREFIX + uuid.uuid4().hex


def changed_instances(
    change: EntityChange, new_id: Callable[[], str] = new_instance_id
) -> list[Document]:
    """One record per attribute instance the change wrote; none for a deletion, which
    leaves the history as it was.

    The instances a write created or changed are those it stamped with its own time: their
    modifiedAt is the entity's. So `after` alone tells them, and may hold only the written
    attributes (with the entity's id, types, attribute names and modifiedAt): a write needs
    no read of the entity before it to be recorded.

    A record holds the entity's id and types, the attribute's expanded name, the instance
    as stored with createdAt and modifiedAt set to when it was written (in the history,
    each instance is created once and never modified), the time it was written (`at`,
    which retention counts from) and its observedAt, or that time without one (`t`)."""
    after = change.after
    if after is None:
        return []
    written = after["modifiedAt"]
    records = []
    for name in after["an"]:
        for instance in instances_of(after, encode_field(name)):
            if instance.get("modifiedAt") != written:
                continue
            record: Document = {
                "_id": new_id(),
                "entity": after["_id"],
                "types": after["type"],
                "attr": name,
                "instance": {**instance, "createdAt": written, "modifiedAt": written},
                RECORDED_AT: written,
                OBSERVED: instance.get("observedAt", written),
            }
            records.append(record)
    return records


def summaries_of(records: Sequence[Document]) -> list[Document]:
    """A summary of each attribute the records hold (`_store.py`): the entity and
    attribute, the entity's types and the earliest time recorded here."""
    found: dict[str, Document] = {}
    for record in records:
        key = summary_id(record["entity"], record["attr"])
        known = found.get(key)
        if known is None or record[RECORDED_AT] < known["first"]:
            found[key] = {
                "_id": key,
                "entity": record["entity"],
                "attr": record["attr"],
                "types": record["types"],
                "first": record[RECORDED_AT],
            }
    return list(found.values())


def summary_id(entity_id: str, attr: str) -> str:
    return f"{entity_id}\n{attr}"
