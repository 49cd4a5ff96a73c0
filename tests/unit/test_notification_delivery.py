"""The pure parts of notification delivery: retry backoff and the MQTT message form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st

from context_broker._delivery._backoff import CAP_S, retry_delay
from context_broker._delivery._mqtt_send import mqtt_message
from context_broker._delivery._queue import Queued


@given(attempts=st.integers(min_value=1, max_value=200), base=st.floats(0.001, 10.0))
def test_retry_delay_is_full_jitter_under_an_exponential_cap(attempts: int, base: float) -> None:
    delay = retry_delay(attempts, base)
    assert 0.0 <= delay <= min(CAP_S, base * 2 ** min(attempts - 1, 32))


def test_mqtt_message_holds_the_headers_as_metadata_and_the_notification_as_body() -> None:
    record = Queued(
        id=ObjectId(),
        tenant=None,
        subscription_id="urn:ngsi-ld:Subscription:1",
        endpoint="mqtt://127.0.0.1:1883/rooms",
        headers={"Content-Type": "application/json", "X-Key": "v"},
        body=b'{"id":"urn:ngsi-ld:Notification:1","type":"Notification","data":[]}',
        notifier_info={},
        attempts=0,
        queued_at=datetime.now(UTC),
        claim="c",
    )
    assert json.loads(mqtt_message(record)) == {
        "metadata": {"Content-Type": "application/json", "X-Key": "v"},
        "body": {"id": "urn:ngsi-ld:Notification:1", "type": "Notification", "data": []},
    }
