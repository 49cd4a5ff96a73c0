"""Conformance kit: sensor payloads against regional models; any NGSI-LD broker against the spec.

>>> from conformance_tests import samples_from_text
>>> samples_from_text('{"topic": "/json/k/d/attrs", "payload": {"t": 1}}', "f.json")[0].topic
'/json/k/d/attrs'
"""

from __future__ import annotations

from ._broker_receiver import NotificationReceiver
from ._check import Checker, MessageResult, Target, TargetError, known_targets, make_target
from ._live import listen, listener_options
from ._payloads import Sample, infer_topic, samples_from_text
from ._report import Report, as_dict, timing_lines, to_html, to_json, to_junit
from ._timing import GAP_FACTOR, Duplicate, Gap, Timing, timing_facts

__all__ = [
    "GAP_FACTOR",
    "Checker",
    "Duplicate",
    "Gap",
    "MessageResult",
    "NotificationReceiver",
    "Report",
    "Sample",
    "Target",
    "TargetError",
    "Timing",
    "as_dict",
    "infer_topic",
    "known_targets",
    "listen",
    "listener_options",
    "make_target",
    "samples_from_text",
    "timing_facts",
    "timing_lines",
    "to_html",
    "to_json",
    "to_junit",
]
