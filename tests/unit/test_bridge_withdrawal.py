"""What a batch delete of shared copies left in place, from the broker's answer."""

from __future__ import annotations

import orjson
import pytest

from ngsild_client import Answer, RetryLater
from ngsild_client._client import kept_after_delete

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def _answer(status: int, body: object = None) -> Answer:
    return Answer(status, {}, b"" if body is None else orjson.dumps(body))


def _error(entity_id: str, status: int, kind: str) -> dict[str, object]:
    return {"entityId": entity_id, "error": {"type": ERRORS + kind, "status": status}}


def test_all_deleted_when_the_broker_answers_204() -> None:
    assert kept_after_delete(_answer(204)) == set()


def test_a_tenant_that_does_not_exist_holds_no_copy() -> None:
    body = {"type": ERRORS + "NonexistentTenant", "title": "no such tenant", "status": 404}
    assert kept_after_delete(_answer(404, body)) == set()


def test_copies_already_gone_count_as_deleted_and_other_refusals_do_not() -> None:
    body = {
        "success": ["urn:ngsi-ld:Alert:a"],
        "errors": [
            _error("urn:ngsi-ld:Alert:b", 404, "ResourceNotFound"),
            _error("urn:ngsi-ld:Alert:c", 400, "BadRequestData"),
        ],
    }
    assert kept_after_delete(_answer(207, body)) == {"urn:ngsi-ld:Alert:c"}


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_refused_batch_is_tried_again_in_the_next_round(status: int) -> None:
    with pytest.raises(RetryLater, match=str(status)):
        kept_after_delete(_answer(status, {"title": "refused", "status": status}))
