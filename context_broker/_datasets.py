"""The datasetId selection of a retrieval or query (clause 4.5.5): which attribute instances
an answer shows, `@none` standing for the default instance."""

from __future__ import annotations

from typing import Any

from context_broker._errors import BadRequestData
from context_broker._names import check_uri

DEFAULT_INSTANCE = "@none"


def parse_dataset_ids(raw: str) -> frozenset[str]:
    """The comma-separated datasetIds of the `datasetId` parameter (URIs, or @none)."""
    items = [item.strip() for item in raw.split(",")]
    if not all(items):
        raise BadRequestData(f"datasetId must list datasetIds separated by ','; got {raw!r}")
    return frozenset(
        item if item == DEFAULT_INSTANCE else check_uri(item, "datasetId") for item in items
    )


def select_datasets(doc: dict[str, Any], dataset_ids: frozenset[str]) -> dict[str, Any]:
    """A copy of the stored document holding only the instances of `dataset_ids`."""
    keep_default = DEFAULT_INSTANCE in dataset_ids
    others = {
        name: kept
        for name, instances in doc.get("ds", {}).items()
        if (kept := [i for i in instances if i["datasetId"] in dataset_ids])
    }
    return {**doc, "attrs": doc["attrs"] if keep_default else {}, "ds": others}
