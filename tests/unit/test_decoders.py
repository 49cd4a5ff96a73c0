"""The payload decoders on the real samples, every rejection path, the subscription filters,
and properties: no payload or topic makes a decoder raise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sensor_ingest._decode import TOPIC_FILTERS, decode
from sensor_ingest._messages import DeviceKey, InboundMessage, Reading, Rejection

SAMPLES = Path(__file__).parent / "data" / "payload-samples"
RECEIVED = datetime(2026, 11, 23, 8, 15, 3, tzinfo=UTC)

TTN_TOPIC = "v3/toscana-aria@ttn/devices/aq-fi-0001/up"
CS_APP = "0c1d5b7e-3a2f-4e61-9b84-7f2c5d9e1a36"
CS_TOPIC = f"application/{CS_APP}/device/a84041000181c2f1/event/up"
APIKEY = "TOSCANA4ARIA2026KEY"


def sample(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def message(topic: str, payload: Any) -> InboundMessage:
    """A message on `topic`; `payload` is sent as is when it is bytes, else as JSON."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return InboundMessage(topic, raw, RECEIVED)


def readings(result: list[Reading] | Rejection) -> list[Reading]:
    assert isinstance(result, list), result
    return result


def rejected(result: list[Reading] | Rejection, reason: str, path: str = "$") -> Rejection:
    assert isinstance(result, Rejection), result
    assert (result.reason, result.path) == (reason, path), result
    assert result.message
    assert result.hint
    return result


DECODED = sample("codec-aq-test-vector.json")["decoded"]
TTN = sample("tts-v3-uplink.json")
CHIRPSTACK = sample("chirpstack-v4-up.json")
IOTAGENT = sample("iotagent-json-mqtt.json")


def ttn_with(**changes: Any) -> dict[str, Any]:
    """The TTN sample with `uplink_message` fields replaced (a value of None removes one)."""
    document = orjson.loads(orjson.dumps(TTN["message"]))
    for name, value in changes.items():
        document["uplink_message"].pop(name, None)
        if value is not None:
            document["uplink_message"][name] = value
    return dict(document)


def chirpstack_with(**changes: Any) -> dict[str, Any]:
    """The ChirpStack sample with top-level fields replaced (a value of None removes one)."""
    document = orjson.loads(orjson.dumps(CHIRPSTACK["message"]))
    for name, value in changes.items():
        document.pop(name, None)
        if value is not None:
            document[name] = value
    return dict(document)


# --- The Things Stack v3 ------------------------------------------------------------------


def test_ttn_sample() -> None:
    assert TTN["_meta"]["mqtt_topic"] == TTN_TOPIC
    [reading] = readings(decode(message(TTN_TOPIC, TTN["message"])))
    assert reading == Reading(
        format="ttn-v3",
        key=DeviceKey("toscana-aria", "aq-fi-0001"),
        measures=DECODED,
        observed_at=datetime(2026, 11, 23, 8, 15, 2, 512345, tzinfo=UTC),
        location=(11.2558, 43.7696),
        hints={"dev_eui": "a84041000181c2f1", "tenant": "ttn"},
    )


@pytest.mark.parametrize("topic", ["v3/app1/devices/dev1/up", "v3/app1@tenant1/devices/dev1/up"])
def test_ttn_upstream_docs_example(topic: str) -> None:
    raw = (SAMPLES / "tts-v3-uplink.upstream-docs-example.json").read_bytes()
    [reading] = readings(decode(message(topic, raw)))
    assert reading.key == DeviceKey("app1", "dev1")
    assert reading.measures == {"temperature": 1.0, "luminosity": 0.64}
    assert reading.observed_at == datetime(2020, 2, 12, 15, 15, 46, 14773, tzinfo=UTC)
    assert reading.location == (23.72678801175413, 37.97155556731436)
    assert reading.hints == {"dev_eui": "0004a30b001c0530", "tenant": "tenant1"}


def test_ttn_location_falls_back_to_the_first_listed() -> None:
    located = {"frm-payload": {"latitude": 43.5, "longitude": 10.3}, "lora-rss": {}}
    [reading] = readings(decode(message(TTN_TOPIC, ttn_with(locations=located))))
    assert reading.location == (10.3, 43.5)


def test_ttn_location_coordinate_left_out_by_protobuf_is_zero() -> None:
    located = {"user": {"latitude": 51.4779, "source": "SOURCE_REGISTRY"}}
    [reading] = readings(decode(message(TTN_TOPIC, ttn_with(locations=located))))
    assert reading.location == (0.0, 51.4779)


def test_ttn_without_location_time_or_ids_hints() -> None:
    document = ttn_with(locations=None, network_ids=None)
    del document["received_at"]
    del document["end_device_ids"]["dev_eui"]
    [reading] = readings(decode(message("v3/toscana-aria/devices/aq-fi-0001/up", document)))
    assert (reading.location, reading.observed_at, reading.hints) == (None, None, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T08:15:02.512345678Z", datetime(2026, 11, 23, 8, 15, 2, 512345, tzinfo=UTC)),
        ("2026-11-23T09:15:02.5+01:00", datetime(2026, 11, 23, 8, 15, 2, 500000, tzinfo=UTC)),
        ("2026-11-23t08:15:02z", datetime(2026, 11, 23, 8, 15, 2, tzinfo=UTC)),
        ("2026-11-23 08:15:02-00:30", datetime(2026, 11, 23, 8, 45, 2, tzinfo=UTC)),
    ],
)
def test_ttn_received_at_is_utc(text: str, expected: datetime) -> None:
    document = ttn_with()
    document["received_at"] = text
    [reading] = readings(decode(message(TTN_TOPIC, document)))
    assert reading.observed_at == expected
    assert reading.observed_at is not None
    assert reading.observed_at.utcoffset() is not None


@pytest.mark.parametrize(
    "value",
    ["2026-11-23", "2026-11-23T08:15:02", "2026-13-01T00:00:00Z", "2026-11-23T08:15:02+25:00", 7],
)
def test_ttn_bad_received_at(value: object) -> None:
    document = ttn_with()
    document["received_at"] = value
    rejected(decode(message(TTN_TOPIC, document)), "undecodable", "$.received_at")


def test_ttn_without_decoded_payload_asks_for_a_formatter() -> None:
    result = decode(message(TTN_TOPIC, ttn_with(decoded_payload=None)))
    problem = rejected(result, "undecodable", "$.uplink_message.decoded_payload")
    assert "no decoded_payload" in problem.message
    assert "payload formatter" in problem.hint


@pytest.mark.parametrize("measures", [{}, [1, 2], "21.4"])
def test_ttn_decoded_payload_must_be_a_non_empty_object(measures: object) -> None:
    result = decode(message(TTN_TOPIC, ttn_with(decoded_payload=measures)))
    rejected(result, "undecodable", "$.uplink_message.decoded_payload")


def test_ttn_device_must_match_the_topic() -> None:
    result = decode(message("v3/toscana-aria@ttn/devices/aq-fi-0002/up", TTN["message"]))
    problem = rejected(result, "undecodable", "$.end_device_ids.device_id")
    assert "'aq-fi-0002'" in problem.message
    assert "'aq-fi-0001'" in problem.message


def test_ttn_needs_an_uplink_message() -> None:
    document = ttn_with()
    document["uplink_message"] = None
    rejected(decode(message(TTN_TOPIC, document)), "undecodable", "$.uplink_message")


@pytest.mark.parametrize(
    ("locations", "path"),
    [
        ([{"latitude": 43.7, "longitude": 11.2}], "$.uplink_message.locations"),
        ({"user": {"latitude": "43.7", "longitude": 11.2}}, "$.uplink_message.locations.user"),
        ({"user": {"latitude": 95.0, "longitude": 11.2}}, "$.uplink_message.locations.user"),
        ({"user": {"latitude": True, "longitude": 11.2}}, "$.uplink_message.locations.user"),
        ({"gps": [43.7, 11.2]}, "$.uplink_message.locations.gps"),
    ],
)
def test_ttn_bad_location(locations: object, path: str) -> None:
    rejected(decode(message(TTN_TOPIC, ttn_with(locations=locations))), "undecodable", path)


# --- ChirpStack v4 ------------------------------------------------------------------------


def test_chirpstack_sample() -> None:
    assert CHIRPSTACK["_meta"]["mqtt_topic"] == CS_TOPIC
    [reading] = readings(decode(message(CS_TOPIC, CHIRPSTACK["message"])))
    assert reading == Reading(
        format="chirpstack-v4",
        key=DeviceKey(CS_APP, "a84041000181c2f1"),
        measures=DECODED,
        observed_at=datetime(2026, 11, 23, 8, 15, 2, 298113, tzinfo=UTC),
        location=None,
        hints={"comune": "048017", "model": "AirQualityObserved"},
    )


def test_chirpstack_dev_eui_is_lowercased() -> None:
    document = chirpstack_with()
    document["deviceInfo"]["devEui"] = "A84041000181C2F1"
    topic = f"application/{CS_APP}/device/A84041000181C2F1/event/up"
    [reading] = readings(decode(message(topic, document)))
    assert reading.key == DeviceKey(CS_APP, "a84041000181c2f1")


def test_chirpstack_without_time_or_tags() -> None:
    document = chirpstack_with(time=None)
    del document["deviceInfo"]["tags"]
    [reading] = readings(decode(message(CS_TOPIC, document)))
    assert (reading.observed_at, reading.hints) == (None, {})


def test_chirpstack_without_object_asks_for_a_codec() -> None:
    problem = rejected(
        decode(message(CS_TOPIC, chirpstack_with(object=None))), "undecodable", "$.object"
    )
    assert "codec" in problem.hint


@pytest.mark.parametrize("measures", [{}, [21.4], 21.4])
def test_chirpstack_object_must_be_a_non_empty_object(measures: object) -> None:
    rejected(decode(message(CS_TOPIC, chirpstack_with(object=measures))), "undecodable", "$.object")


@pytest.mark.parametrize("info", [{"devEui": "a84041000181c2f2"}, {}, None])
def test_chirpstack_device_must_match_the_topic(info: object) -> None:
    result = decode(message(CS_TOPIC, chirpstack_with(deviceInfo=info)))
    rejected(result, "undecodable", "$.deviceInfo.devEui")


def test_chirpstack_bad_time() -> None:
    result = decode(message(CS_TOPIC, chirpstack_with(time="23/11/2026 08:15")))
    rejected(result, "undecodable", "$.time")


def test_chirpstack_protobuf_event_asks_for_json() -> None:
    protobuf = bytes.fromhex("0a2435663065376134632d326231642d346338652d396136332d3064326237")
    problem = rejected(decode(message(CS_TOPIC, protobuf + b"\x92\xff")), "undecodable")
    assert "json=true" in problem.hint


# --- FIWARE IoT Agent JSON ----------------------------------------------------------------

IOTAGENT_KEY = DeviceKey(APIKEY, "aq-fi-0001")


def iotagent_sample(index: int) -> InboundMessage:
    entry = IOTAGENT["messages"][index]
    return message(entry["topic"], entry["payload"])


@pytest.mark.parametrize("index", [0, 1])
def test_iotagent_measures(index: int) -> None:
    [reading] = readings(decode(iotagent_sample(index)))
    assert reading == Reading("iotagent-json", IOTAGENT_KEY, IOTAGENT["messages"][index]["payload"])


def test_iotagent_multimeasure_gives_one_reading_per_object_in_order() -> None:
    first, second = readings(decode(iotagent_sample(2)))
    assert first.measures == {"t": 21.1, "h": 59.0, "TimeInstant": "2026-11-23T08:00:00Z"}
    assert second.measures == {"t": 21.37, "h": 58.5, "TimeInstant": "2026-11-23T08:15:00Z"}
    assert {first.key, second.key} == {IOTAGENT_KEY}
    assert first.observed_at is second.observed_at is None


def test_iotagent_single_attribute_sample() -> None:
    [reading] = readings(decode(iotagent_sample(3)))
    assert reading == Reading("iotagent-json", IOTAGENT_KEY, {"pm10": 23.4}, single_attribute=True)


@pytest.mark.parametrize(
    ("topic", "payload", "value"),
    [
        ("/json/k/d/attrs/state", b"on", "on"),
        ("/json/k/d/attrs/state", b'"on"', "on"),
        ("/k/d/attrs/t", b"21.4", 21.4),
        ("/k/d/attrs/ok", b"true", True),
        ("/k/d/attrs/note", "città".encode(), "città"),
        ("/k/d/attrs/pos", b"[11.2, 43.7]", [11.2, 43.7]),
    ],
)
def test_iotagent_single_attribute_is_json_else_text(
    topic: str, payload: bytes, value: object
) -> None:
    [reading] = readings(decode(message(topic, payload)))
    assert reading.key == DeviceKey("k", "d")
    assert reading.measures == {topic.rsplit("/", 1)[1]: value}
    assert reading.single_attribute


@pytest.mark.parametrize("payload", [b"", b"  \n"])
def test_iotagent_single_attribute_needs_a_value(payload: bytes) -> None:
    rejected(decode(message("/k/d/attrs/t", payload)), "undecodable")


def test_iotagent_ambiguous_topic_reads_as_the_json_form() -> None:
    [reading] = readings(decode(message("/json/k/attrs/attrs", {"t": 1})))
    assert (reading.key, reading.single_attribute) == (DeviceKey("k", "attrs"), False)


def test_iotagent_legacy_apikey_json() -> None:
    [reading] = readings(decode(message("/json/d/attrs", {"t": 1})))
    assert reading.key == DeviceKey("json", "d")


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ([], "$"),
        ({}, "$"),
        (21.4, "$"),
        ("21.4", "$"),
        (None, "$"),
        ([{"t": 1}, 2], "$[1]"),
        ([{"t": 1}, {}], "$[1]"),
        ([[{"t": 1}]], "$[0]"),
        (b"{'t': 1}", "$"),
        (b"\xff\xfe", "$"),
        (b"", "$"),
    ],
)
def test_iotagent_undecodable(payload: Any, path: str) -> None:
    rejected(decode(message(f"/json/{APIKEY}/aq-fi-0001/attrs", payload)), "undecodable", path)


@pytest.mark.parametrize("index", [4, 5])
def test_iotagent_commands_are_not_measures(index: int) -> None:
    rejected(decode(iotagent_sample(index)), "unsupported-topic", "")


# --- flat JSON ----------------------------------------------------------------------------


def test_flat_json_joins_nested_keys_and_keeps_arrays() -> None:
    payload = {"t": 21.4, "air": {"pm10": 23, "gas": {"no2": 31.8}}, "pos": [11.2, {"a": 1}]}
    [reading] = readings(decode(message("flat/comune-fi/aq-1", payload)))
    assert reading == Reading(
        "flat-json",
        DeviceKey("comune-fi", "aq-1"),
        {"t": 21.4, "air.pm10": 23, "air.gas.no2": 31.8, "pos": [11.2, {"a": 1}]},
    )
    assert list(reading.measures) == ["t", "air.pm10", "air.gas.no2", "pos"]


def test_flat_json_deep_nesting_does_not_recurse() -> None:
    depth = 1000
    payload = b'{"a":' * depth + b"1" + b"}" * depth
    [reading] = readings(decode(message("flat/g/d", payload)))
    assert reading.measures == {".".join(["a"] * depth): 1}


@pytest.mark.parametrize(
    "payload",
    [{}, {"a": {}}, [{"t": 1}], 1, None, {"a.b": 1, "a": {"b": 2}}, b"{", b"\xc3\x28", b""],
)
def test_flat_json_undecodable(payload: Any) -> None:
    rejected(decode(message("flat/g/d", payload)), "undecodable")


# --- topics and filters -------------------------------------------------------------------


def mqtt_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1/5 topic-filter matching (section 4.7), wildcards `+` and `#`."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic.split("/")
    for index, wanted in enumerate(topic_filter.split("/")):
        if wanted == "#":
            return True
        if index >= len(levels) or wanted not in ("+", levels[index]):
            return False
    return len(topic_filter.split("/")) == len(levels)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("sport/tennis/#", "sport/tennis", True),
        ("sport/#", "sport/tennis/player1/ranking", True),
        ("sport/+", "sport/", True),
        ("sport/+", "sport", False),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/broker", False),
        ("+/monitor", "$SYS/monitor", False),
    ],
)
def test_mqtt_matches_follows_the_spec(topic_filter: str, topic: str, matches: bool) -> None:
    assert mqtt_matches(topic_filter, topic) is matches


SAMPLE_TOPICS = [
    TTN_TOPIC,
    "v3/app1/devices/dev1/up",
    CS_TOPIC,
    "flat/comune-fi/aq-1",
    *(entry["topic"] for entry in IOTAGENT["messages"][:4]),
    f"/{APIKEY}/aq-fi-0001/attrs/pm10",
    f"/json/{APIKEY}/aq-fi-0001/attrs/pm10",
]


@pytest.mark.parametrize("topic", SAMPLE_TOPICS)
def test_every_supported_topic_is_matched_by_exactly_one_filter(topic: str) -> None:
    assert sum(mqtt_matches(f, topic) for f in TOPIC_FILTERS) == 1


@pytest.mark.parametrize("index", [4, 5])
def test_command_topics_are_not_subscribed(index: int) -> None:
    topic = IOTAGENT["messages"][index]["topic"]
    assert not any(mqtt_matches(f, topic) for f in TOPIC_FILTERS)


def test_the_one_theoretical_overlap() -> None:
    assert [f for f in TOPIC_FILTERS if mqtt_matches(f, "/json/k/attrs/attrs")] == [
        "/+/+/attrs/+",
        "/json/+/+/attrs",
    ]


def test_unsupported_topic_lists_the_supported_shapes() -> None:
    problem = rejected(decode(message("sensors/aq-fi-0001", {"t": 1})), "unsupported-topic", "")
    for shape in ("/json", "v3/<application_id>", "application/<application_id>", "flat/<group>"):
        assert shape in problem.hint


@pytest.mark.parametrize(
    "topic",
    [
        "v3/app@/devices/d/up",
        "v3/@ttn/devices/d/up",
        "v3/app/devices//up",
        "v3/app/devices/d/down",
        "application//device/x/event/up",
        "application/a/device/x/event/join",
        "flat/g",
        "flat/g/d/x",
        "flat//d",
        "//d/attrs",
        "/json/k//attrs",
        "/k/d/attrs/",
        "k/d/attrs",
    ],
)
def test_malformed_topics_are_unsupported(topic: str) -> None:
    rejected(decode(message(topic, {"t": 1})), "unsupported-topic", "")


IOTAGENT_LEVELS = ["", "json", "k", "d", "attrs", "t"]
NETWORK_LEVELS = ["v3", "app", "app@ten", "devices", "up", "application", "device", "event", "flat"]
LEVELS = st.sampled_from([*IOTAGENT_LEVELS, *NETWORK_LEVELS, "$SYS", "+x"])


@st.composite
def near_filters(draw: st.DrawFn) -> str:
    """A topic made from a subscription filter: `+` filled in, levels changed or added."""
    levels = draw(st.sampled_from(TOPIC_FILTERS)).split("/")
    levels = [
        draw(LEVELS) if level == "+" or draw(st.integers(0, 5)) == 0 else level for level in levels
    ]
    return "/".join(levels + draw(st.lists(LEVELS, max_size=1)))


@given(st.lists(LEVELS, min_size=1, max_size=7).map("/".join) | near_filters())
@example("/json/k/attrs/attrs")
def test_a_topic_is_decoded_if_and_only_if_it_is_subscribed(topic: str) -> None:
    accepted = not (
        isinstance(result := decode(message(topic, b"")), Rejection)
        and result.reason == "unsupported-topic"
    )
    matched = sum(mqtt_matches(f, topic) for f in TOPIC_FILTERS)
    if accepted:
        overlap = mqtt_matches("/json/+/attrs/attrs", topic)
        assert matched == (2 if overlap else 1)
    elif "" not in topic.split("/")[1:]:
        assert matched == 0


# --- properties: nothing raises -----------------------------------------------------------

SUPPORTED_TOPICS = st.sampled_from([*SAMPLE_TOPICS, "/json/k/attrs/attrs"])
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
TIMES = st.datetimes(timezones=st.timezones()).map(datetime.isoformat) | JSON_VALUES


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(None), value)


TTN_LIKE = st.fixed_dictionaries(
    {
        "end_device_ids": maybe(
            st.fixed_dictionaries({"device_id": st.sampled_from(["aq-fi-0001", "dev1", "x"])})
        ),
        "received_at": TIMES,
        "uplink_message": maybe(
            st.fixed_dictionaries(
                {"decoded_payload": JSON_VALUES},
                optional={"locations": JSON_VALUES, "network_ids": JSON_VALUES},
            )
        ),
    }
)
CHIRPSTACK_LIKE = st.fixed_dictionaries(
    {
        "deviceInfo": maybe(
            st.fixed_dictionaries(
                {"devEui": st.sampled_from(["a84041000181c2f1", "A84041000181C2F1", "0"])},
                optional={"tags": JSON_VALUES},
            )
        ),
        "time": TIMES,
        "object": JSON_VALUES,
    }
)


def check(result: list[Reading] | Rejection) -> None:
    if isinstance(result, Rejection):
        assert result.message
        return
    assert isinstance(result, list)
    assert result
    for reading in result:
        assert isinstance(reading, Reading)
        assert reading.measures
        assert reading.observed_at is None or reading.observed_at.tzinfo is UTC


@given(SUPPORTED_TOPICS, st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(topic: str, payload: bytes) -> None:
    check(decode(message(topic, payload)))


@given(SUPPORTED_TOPICS, JSON_VALUES)
def test_arbitrary_json_never_raises(topic: str, payload: Any) -> None:
    check(decode(message(topic, payload)))


@given(st.text(max_size=60), st.binary(max_size=40))
def test_arbitrary_topics_never_raise(topic: str, payload: bytes) -> None:
    check(decode(message(topic, payload)))


@given(
    st.sampled_from(["v3/toscana-aria/devices/aq-fi-0001/up", "v3/a@t/devices/dev1/up"]), TTN_LIKE
)
def test_ttn_shaped_documents_never_raise(topic: str, document: dict[str, Any]) -> None:
    check(decode(message(topic, document)))


@given(st.sampled_from([CS_TOPIC]), CHIRPSTACK_LIKE)
def test_chirpstack_shaped_documents_never_raise(topic: str, document: dict[str, Any]) -> None:
    check(decode(message(topic, document)))
