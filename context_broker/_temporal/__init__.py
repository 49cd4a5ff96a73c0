"""History: the NGSI-LD temporal representation of entities (ETSI GS CIM 009 clauses
4.5.7-4.5.9, 5.7.3-5.7.4, 6.18-6.19).

Every acknowledged write's changed attribute instances are recorded in the tenant's own
`temporal_instances` collection (`_recorder.py`, a change sink beside the notifications'),
and the temporal API reads them back (`_http/_temporal.py`). `_query.py` and `_records.py`
and `_representation.py` and `_aggregation.py` are pure; `_store.py` is the only module
that speaks to the store; `_retention.py` deletes what is past its retention.
"""

from context_broker._temporal._query import TemporalQuery, parse_temporal_query
from context_broker._temporal._recorder import TemporalRecorder
from context_broker._temporal._retention import RetentionSweep
from context_broker._temporal._store import TemporalStore

__all__ = [
    "RetentionSweep",
    "TemporalQuery",
    "TemporalRecorder",
    "TemporalStore",
    "parse_temporal_query",
]
