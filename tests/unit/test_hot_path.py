"""The hot path takes only requests the route table gives to the same two operations."""

from __future__ import annotations

import re

from context_broker import BrokerSettings, create_app
from context_broker._http._hot_path import ENTITIES_PATH

# The requests the hot path takes: one path segment for the id, one for the attribute.
_CLAIMED = {
    "get": re.compile(re.escape(ENTITIES_PATH) + r"[^/]+"),
    "patch": re.compile(re.escape(ENTITIES_PATH) + r"[^/]+/attrs/[^/]+"),
}
_HANDLED_BY = {
    "get": "Retrieve Entity (clause 6.5.3.1)",
    "patch": "Partial Attribute Update (clause 6.7.3.1)",
}


def test_no_other_route_answers_a_request_the_hot_path_takes() -> None:
    """Every declared route that could match a path the hot path takes (a `{param}` standing
    for any segment) is the operation the hot path runs, so route order cannot matter."""
    schema = create_app(BrokerSettings()).openapi()
    found = dict.fromkeys(_HANDLED_BY, 0)
    for template, operations in schema["paths"].items():
        sample = re.sub(r"\{[^}]+\}", "x", template)
        for method, claimed in _CLAIMED.items():
            if method in operations and claimed.fullmatch(sample):
                assert operations[method]["summary"] == _HANDLED_BY[method], template
                found[method] += 1
    assert found == {"get": 1, "patch": 1}
