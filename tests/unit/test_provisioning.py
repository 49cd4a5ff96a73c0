"""IoT Agent provisioning JSON <-> registry values: the FIWARE bodies, our extensions, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sensor_ingest._devices import AttributeMapping, Device, ServiceGroup, StaticAttribute
from sensor_ingest._provisioning import (
    ProvisioningError,
    check_service_path,
    device_to_json,
    devices_from_json,
    group_to_json,
    groups_from_json,
    kind_of,
    provisioning_from_json,
    tenant_of,
    updated_device,
    updated_group,
)

# The bodies of the FIWARE IoT Agent (NGSI-LD) tutorial, requests 2 and 3, as published.
TUTORIAL_SERVICES: dict[str, Any] = {
    "services": [
        {
            "apikey": "4jggokgpepnvsb2uv4s40d59ov",
            "cbroker": "http://orion:1026",
            "entity_type": "Device",
            "resource": "/iot/d",
            "attributes": [
                {
                    "object_id": "bpm",
                    "type": "Property",
                    "name": "heartRate",
                    "metadata": {"unitCode": {"type": "Text", "value": "5K"}},
                },
                {"object_id": "s", "name": "status", "type": "Property"},
                {"object_id": "gps", "name": "location", "type": "geo:point"},
            ],
            "static_attributes": [
                {"name": "category", "type": "Property", "value": "sensor"},
                {"name": "supportedProtocol", "type": "Property", "value": "ul20"},
            ],
        }
    ]
}
TUTORIAL_DEVICES: dict[str, Any] = {
    "devices": [
        {
            "device_id": "temperature001",
            "entity_name": "urn:ngsi-ld:Device:temperature001",
            "entity_type": "Device",
            "timezone": "Europe/Berlin",
            "attributes": [
                {
                    "object_id": "t",
                    "name": "temperature",
                    "type": "Property",
                    "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
                }
            ],
            "static_attributes": [
                {
                    "name": "controlledAsset",
                    "type": "Relationship",
                    "value": "urn:ngsi-ld:Building:barn001",
                }
            ],
        }
    ]
}
KEY = "4jggokgpepnvsb2uv4s40d59ov"


def _group(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"apikey": "k1", "entity_type": "Thing"}
    return {**base, **changes}


def _one_group(item: dict[str, Any], tenant: str = "firenze") -> ServiceGroup:
    [group] = groups_from_json({"services": [item]}, tenant)
    return group


def _refused(call: Any, name: str, fragment: str) -> ProvisioningError:
    with pytest.raises(ProvisioningError) as caught:
        call()
    assert caught.value.name == name, caught.value.message
    assert fragment in caught.value.message, caught.value.message
    return caught.value


# --------------------------------------------------------------------------- headers


def test_the_tenant_is_the_lower_cased_fiware_service() -> None:
    assert tenant_of("OpenIoT") == "openiot"
    assert tenant_of(" comune_di-prato ") == "comune_di-prato"


@pytest.mark.parametrize("header", [None, "", "  "])
def test_a_missing_fiware_service_is_missing_headers(header: str | None) -> None:
    _refused(lambda: tenant_of(header), "MISSING_HEADERS", "fiware-service")


@pytest.mark.parametrize("header", ["a/b", "-x", "città", "x" * 49, "a b"])
def test_a_malformed_fiware_service_is_a_bad_request(header: str) -> None:
    _refused(lambda: tenant_of(header), "BAD_REQUEST", "fiware-service must be")


@pytest.mark.parametrize("path", [None, "", "/", " / "])
def test_the_root_service_path_is_accepted(path: str | None) -> None:
    check_service_path(path)


@pytest.mark.parametrize("path", ["/project", "/*", "/a/b", "project"])
def test_other_service_paths_are_refused_clearly(path: str) -> None:
    error = _refused(lambda: check_service_path(path), "BAD_REQUEST", "is not supported")
    assert "fiware-servicepath: /" in error.message


# ----------------------------------------------------------------- service groups


def test_the_tutorial_service_group_is_read_as_the_iot_agent_means_it() -> None:
    [group] = groups_from_json(TUTORIAL_SERVICES, "openiot")
    assert group == ServiceGroup(
        tenant="openiot",
        format="iotagent-json",
        group=KEY,
        entity_type="Device",
        attributes=(
            AttributeMapping("bpm", "heartRate", "Property", unit_code="5K"),
            AttributeMapping("s", "status", "Property"),
            AttributeMapping("gps", "location", "GeoProperty"),
        ),
        static_attributes=(
            StaticAttribute("category", "Property", "sensor"),
            StaticAttribute("supportedProtocol", "Property", "ul20"),
        ),
        autoprovision=True,
        explicit_attributes=False,
        timestamp_field="TimeInstant",
    )


def test_our_extensions_format_model_profile_scale_offset() -> None:
    group = _one_group(
        {
            "apikey": "prato-aria",
            "format": "ttn-v3",
            "profile": "toscana/AirQualityObserved",
            "autoprovision": False,
            "explicitAttrs": True,
            "timestamp": "time",
            "attributes": [
                {"object_id": "t", "name": "temperature", "type": "Number", "offset": -273.15},
                {"object_id": "h", "name": "relativeHumidity", "type": "Number", "scale": 0.01},
            ],
        }
    )
    assert group.format == "ttn-v3"
    assert group.model == "AirQualityObserved"  # a profile implies its model ...
    assert group.entity_type == "AirQualityObserved"  # ... and the model names the type
    assert group.profile == "toscana/AirQualityObserved"
    assert group.attributes == (
        AttributeMapping("t", "temperature", offset=-273.15),
        AttributeMapping("h", "relativeHumidity", scale=0.01),
    )
    assert (group.autoprovision, group.explicit_attributes) == (False, True)
    assert group.timestamp_field == "time"


@pytest.mark.parametrize("timestamp", [True, False, None])
def test_the_iot_agent_timestamp_flag_keeps_time_instant(timestamp: bool | None) -> None:
    assert _one_group(_group(timestamp=timestamp)).timestamp_field == "TimeInstant"


def test_the_older_type_member_names_the_entity_type() -> None:
    assert _one_group({"apikey": "k", "type": "Light"}).entity_type == "Light"


@pytest.mark.parametrize(
    ("attribute_type", "kind"),
    [
        ("geo:json", "GeoProperty"),
        ("geo:point", "GeoProperty"),
        ("GeoProperty", "GeoProperty"),
        ("Relationship", "Relationship"),
        ("Property", "Property"),
        ("Number", "Property"),
        ("Float", "Property"),
        ("Text", "Property"),
    ],
)
def test_attribute_types_map_to_ngsi_ld_kinds(attribute_type: str, kind: str) -> None:
    assert kind_of(attribute_type) == kind
    group = _one_group(_group(attributes=[{"name": "a", "type": attribute_type}]))
    assert group.attributes == (AttributeMapping("a", "a", kind),)


def test_an_object_id_defaults_to_the_name_and_a_plain_unit_code_is_read() -> None:
    group = _one_group(
        _group(attributes=[{"name": "pm10", "type": "Number", "metadata": {"unitCode": "GQ"}}])
    )
    assert group.attributes == (AttributeMapping("pm10", "pm10", unit_code="GQ"),)


def test_static_geo_json_keeps_its_geojson_and_geo_point_text_becomes_geojson() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[11.2, 43.7], [11.3, 43.7], [11.2, 43.8]]]}
    group = _one_group(
        _group(
            static_attributes=[
                {"name": "location", "type": "geo:json", "value": polygon},
                {"name": "entrance", "type": "geo:point", "value": "43.77, 11.25"},
                {"name": "refSite", "type": "Relationship", "value": "urn:ngsi-ld:Site:1"},
                {"name": "info", "type": "StructuredValue", "value": {"$ref": 1, "n": 2**70}},
            ]
        )
    )
    assert group.static_attributes == (
        StaticAttribute("location", "GeoProperty", polygon),
        StaticAttribute(
            "entrance", "GeoProperty", {"type": "Point", "coordinates": [11.25, 43.77]}
        ),
        StaticAttribute("refSite", "Relationship", "urn:ngsi-ld:Site:1"),
        StaticAttribute("info", "Property", {"$ref": 1, "n": 2**70}),
    )


def test_a_group_reads_back_from_its_own_json() -> None:
    group = _one_group(
        {
            "apikey": "k",
            "format": "chirpstack-v4",
            "entity_type": "WeatherObserved",
            "model": "WeatherObserved",
            "entity_id_prefix": "urn:ngsi-ld:WeatherObserved:prato:",
            "autoprovision": False,
            "timestamp": "ts",
            "attributes": [
                {"object_id": "t", "name": "temperature", "type": "Number", "scale": 0.1},
                {"object_id": "p", "name": "location", "type": "geo:json"},
                {
                    "name": "atmosphericPressure",
                    "type": "Number",
                    "metadata": {"unitCode": {"value": "A97"}},
                },
            ],
            "static_attributes": [
                {"name": "address", "type": "Property", "value": {"addressLocality": "Prato"}}
            ],
        }
    )
    body = group_to_json(group)
    assert body["apikey"] == "k" and body["service"] == "firenze" and body["subservice"] == "/"
    assert body["attributes"][0] == {
        "object_id": "t",
        "name": "temperature",
        "type": "Property",
        "scale": 0.1,
    }
    assert body["attributes"][2]["metadata"] == {"unitCode": {"type": "Text", "value": "A97"}}
    assert body["timestamp"] == "ts"
    assert _one_group(body) == group


GROUP_ERRORS: list[tuple[Any, str, str]] = [
    ([], "WRONG_SYNTAX", "$ must be a JSON object; got an array"),
    ({}, "WRONG_SYNTAX", "$.services is required"),
    ({"services": []}, "WRONG_SYNTAX", "$.services is required: a non-empty array"),
    ({"services": {"apikey": "k"}}, "WRONG_SYNTAX", "$.services is required"),
    ({"services": ["k"]}, "WRONG_SYNTAX", "$.services[0] must be a JSON object; got a string"),
    ({"services": [{"entity_type": "T"}]}, "WRONG_SYNTAX", "$.services[0].apikey is required"),
    ({"services": [_group(apikey="")]}, "WRONG_SYNTAX", "apikey is required"),
    ({"services": [_group(apikey=7)]}, "WRONG_SYNTAX", "apikey is required"),
    ({"services": [_group(apikey="a/b")]}, "WRONG_SYNTAX", "MQTT topic"),
    ({"services": [_group(apikey="a+")]}, "WRONG_SYNTAX", "without '/', '+', '#'"),
    ({"services": [{"apikey": "k"}]}, "WRONG_SYNTAX", "$.services[0].entity_type is required"),
    ({"services": [_group(entity_type="no spaces")]}, "WRONG_SYNTAX", "must be a type name"),
    ({"services": [_group(entity_type=3)]}, "WRONG_SYNTAX", "must be a non-empty string"),
    ({"services": [_group(format="ultralight")]}, "WRONG_SYNTAX", "format must be one of"),
    ({"services": [_group(model="AirQuality")]}, "BAD_REQUEST", "unknown model 'AirQuality'"),
    ({"services": [_group(profile="toscana/X")]}, "BAD_REQUEST", "unknown profile"),
    (
        {"services": [_group(model="ParkingSpot", profile="toscana/AirQualityObserved")]},
        "BAD_REQUEST",
        "applies to AirQualityObserved, not ParkingSpot",
    ),
    ({"services": [_group(attributes={})]}, "WRONG_SYNTAX", "attributes must be a JSON array"),
    ({"services": [_group(attributes=[1])]}, "WRONG_SYNTAX", "attributes[0] must be a JSON"),
    (
        {"services": [_group(attributes=[{"type": "Number"}])]},
        "WRONG_SYNTAX",
        "$.services[0].attributes[0].name is required",
    ),
    ({"services": [_group(attributes=[{"name": "id"}])]}, "WRONG_SYNTAX", "not id, type"),
    ({"services": [_group(attributes=[{"name": "a b"}])]}, "WRONG_SYNTAX", "attribute name"),
    (
        {"services": [_group(attributes=[{"name": "a", "object_id": ""}])]},
        "WRONG_SYNTAX",
        "object_id must be a non-empty string",
    ),
    ({"services": [_group(attributes=[{"name": "a", "type": 1}])]}, "WRONG_SYNTAX", "type is"),
    (
        {"services": [_group(attributes=[{"name": "a", "scale": "2"}])]},
        "WRONG_SYNTAX",
        "scale must be a finite number",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "offset": True}])]},
        "WRONG_SYNTAX",
        "offset must be a finite number",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "scale": 0}])]},
        "WRONG_SYNTAX",
        "scale must not be 0",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "type": "geo:json", "scale": 2}])]},
        "WRONG_SYNTAX",
        "not to a GeoProperty",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "metadata": []}])]},
        "WRONG_SYNTAX",
        "metadata must be a JSON object",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "metadata": {"unitCode": {"value": 1}}}])]},
        "WRONG_SYNTAX",
        "UN/CEFACT unit code",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "expression": "a * 2"}])]},
        "BAD_REQUEST",
        "use `scale` and `offset`",
    ),
    (
        {"services": [_group(attributes=[{"name": "a", "entity_name": "urn:x:1"}])]},
        "BAD_REQUEST",
        "multi-entity",
    ),
    (
        {"services": [_group(attributes=[{"name": "a"}, {"object_id": "a", "name": "b"}])]},
        "WRONG_SYNTAX",
        "attribute object_id 'a' appears twice",
    ),
    (
        {"services": [_group(attributes=[{"object_id": "x", "name": "a"}, {"name": "a"}])]},
        "WRONG_SYNTAX",
        "attribute name 'a' appears twice",
    ),
    (
        {"services": [_group(static_attributes=[{"name": "a", "type": "Property"}])]},
        "WRONG_SYNTAX",
        "static_attributes[0].value is required",
    ),
    (
        {"services": [_group(static_attributes=[{"name": "a", "type": "T", "value": None}])]},
        "WRONG_SYNTAX",
        "no null values",
    ),
    (
        {"services": [_group(static_attributes=[{"name": "a", "value": 1}])]},
        "WRONG_SYNTAX",
        "static_attributes[0].type is required",
    ),
    (
        {
            "services": [
                _group(static_attributes=[{"name": "r", "type": "Relationship", "value": 1}])
            ]
        },
        "WRONG_SYNTAX",
        "must be the URI of the related entity",
    ),
    (
        {"services": [_group(static_attributes=[{"name": "l", "type": "geo:json", "value": "x"}])]},
        "WRONG_SYNTAX",
        "must be a GeoJSON geometry",
    ),
    (
        {
            "services": [
                _group(static_attributes=[{"name": "l", "type": "geo:point", "value": "1"}])
            ]
        },
        "WRONG_SYNTAX",
        '"latitude, longitude"',
    ),
    (
        {
            "services": [
                _group(static_attributes=[{"name": "l", "type": "geo:point", "value": "91, 1"}])
            ]
        },
        "WRONG_SYNTAX",
        "is not a latitude, longitude pair",
    ),
    (
        {
            "services": [
                _group(
                    static_attributes=[
                        {"name": "a", "type": "Property", "value": 1},
                        {"name": "a", "type": "Property", "value": 2},
                    ]
                )
            ]
        },
        "WRONG_SYNTAX",
        "static attribute name 'a' appears twice",
    ),
    (
        {"services": [_group(lazy=[{"name": "status", "type": "Boolean"}])]},
        "BAD_REQUEST",
        "lazy attributes are not supported",
    ),
    (
        {"services": [_group(commands=[{"name": "on", "type": "command"}])]},
        "BAD_REQUEST",
        "commands are not supported",
    ),
    ({"services": [_group(entityNameExp="x")]}, "BAD_REQUEST", "entityNameExp"),
    ({"services": [_group(autoprovision="yes")]}, "WRONG_SYNTAX", "autoprovision must be true"),
    (
        {"services": [_group(explicitAttrs="s ? true : false")]},
        "WRONG_SYNTAX",
        "expressions are not supported",
    ),
    ({"services": [_group(timestamp=1)]}, "WRONG_SYNTAX", "timestamp must be true/false"),
    ({"services": [_group(entity_id_prefix="prefix")]}, "WRONG_SYNTAX", "start like a URI"),
    (
        {"services": [_group(), _group(entity_type="Other")]},
        "WRONG_SYNTAX",
        "service group 'iotagent-json/k1' appears twice",
    ),
]


@pytest.mark.parametrize(("body", "name", "fragment"), GROUP_ERRORS)
def test_every_malformed_group_is_refused_with_its_path(
    body: Any, name: str, fragment: str
) -> None:
    _refused(lambda: groups_from_json(body, "firenze"), name, fragment)


def test_empty_lazy_and_commands_lists_are_accepted() -> None:
    assert _one_group(_group(lazy=[], commands=[], internal_attributes=[])).group == "k1"


def test_the_api_reference_example_with_commands_is_refused_not_half_taken() -> None:
    body = {
        "services": [
            {
                "resource": "/deviceTest",
                "apikey": "801230BJKL23Y9090DSFL123HJK09H324HV8732",
                "type": "Light",
                "commands": [{"name": "wheel1", "type": "Wheel"}],
                "attributes": [{"name": "luminescence", "type": "Integer"}],
            }
        ]
    }
    _refused(lambda: groups_from_json(body, "acme"), "BAD_REQUEST", "$.services[0].commands")


def test_a_partial_update_replaces_only_the_fields_given() -> None:
    group = _one_group(
        _group(model="AirQualityObserved", attributes=[{"object_id": "t", "name": "temperature"}])
    )
    changed = updated_group(group, {"autoprovision": False, "profile": "toscana/ParkingSpot"})
    assert changed.autoprovision is False
    assert (changed.model, changed.profile) == ("ParkingSpot", "toscana/ParkingSpot")
    assert changed.attributes == group.attributes
    assert changed.entity_type == "Thing"
    assert updated_group(group, {"type": "Lamp"}).entity_type == "Lamp"
    assert updated_group(group, {"apikey": "k1", "format": "iotagent-json"}) == group


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [({"apikey": "k2"}, "$.apikey cannot be changed"), ({"format": "ttn-v3"}, "$.format")],
)
def test_a_group_keeps_its_key(changes: dict[str, Any], fragment: str) -> None:
    group = _one_group(_group())
    _refused(lambda: updated_group(group, changes), "BAD_REQUEST", fragment)


def test_an_update_body_must_be_an_object() -> None:
    group = _one_group(_group())
    _refused(lambda: updated_group(group, ["x"]), "WRONG_SYNTAX", "$ must be a JSON object")


# ------------------------------------------------------------------------- devices

TUTORIAL_GROUP = ServiceGroup("openiot", "iotagent-json", KEY, "Device")


def test_the_tutorial_device_joins_the_group_of_its_type() -> None:
    [device] = devices_from_json(TUTORIAL_DEVICES, "openiot", [TUTORIAL_GROUP])
    assert device == Device(
        tenant="openiot",
        format="iotagent-json",
        group=KEY,
        device_id="temperature001",
        entity_id="urn:ngsi-ld:Device:temperature001",
        entity_type="Device",
        attributes=(AttributeMapping("t", "temperature", unit_code="CEL"),),
        static_attributes=(
            StaticAttribute("controlledAsset", "Relationship", "urn:ngsi-ld:Building:barn001"),
        ),
    )


def test_a_device_with_apikey_takes_its_groups_format() -> None:
    ttn = ServiceGroup("prato", "ttn-v3", "prato-aria", "AirQualityObserved")
    [device] = devices_from_json(
        {"devices": [{"device_id": "eui-1", "apikey": "prato-aria"}]}, "prato", [ttn]
    )
    assert (device.format, device.group, device.entity_type) == ("ttn-v3", "prato-aria", None)


def test_a_device_of_an_unknown_key_with_a_type_stands_alone() -> None:
    [device] = devices_from_json(
        {"devices": [{"device_id": "d1", "apikey": "k", "model": "WeatherObserved"}]}, "prato"
    )
    assert (device.format, device.entity_type, device.model) == (
        "iotagent-json",
        "WeatherObserved",
        "WeatherObserved",
    )


def test_groups_of_other_tenants_are_never_matched() -> None:
    _refused(
        lambda: devices_from_json(TUTORIAL_DEVICES, "prato", [TUTORIAL_GROUP]),
        "BAD_REQUEST",
        "no service group of this service has entity_type 'Device'",
    )


TWO_FORMATS = [
    ServiceGroup("t", "iotagent-json", "k", "Device"),
    ServiceGroup("t", "flat-json", "k", "Device"),
]
DEVICE_ERRORS: list[tuple[Any, list[ServiceGroup], str, str]] = [
    ({"devices": "d1"}, [], "WRONG_SYNTAX", "$.devices is required"),
    ({"devices": [None]}, [], "WRONG_SYNTAX", "$.devices[0] must be a JSON object; got null"),
    ({"devices": [{"apikey": "k"}]}, [], "WRONG_SYNTAX", "$.devices[0].device_id is required"),
    ({"devices": [{"device_id": "a#b", "apikey": "k"}]}, [], "WRONG_SYNTAX", "MQTT topic"),
    ({"devices": [{"device_id": "d"}]}, [], "BAD_REQUEST", "needs an apikey"),
    (
        {"devices": [{"device_id": "d", "entity_type": "Device"}]},
        TWO_FORMATS,
        "BAD_REQUEST",
        "2 service groups (k, k) have entity_type 'Device'",
    ),
    (
        {"devices": [{"device_id": "d", "apikey": "k"}]},
        [],
        "BAD_REQUEST",
        "has no entity_type and this service has no group with apikey 'k'",
    ),
    (
        {"devices": [{"device_id": "d", "apikey": "k"}]},
        TWO_FORMATS,
        "BAD_REQUEST",
        "names groups of formats flat-json, iotagent-json",
    ),
    (
        {"devices": [{"device_id": "d", "apikey": "k", "entity_type": "T", "entity_name": "d1"}]},
        [],
        "WRONG_SYNTAX",
        "entity_name must be a URI",
    ),
    (
        {"devices": [{"device_id": "d", "apikey": "k", "entity_type": "T", "format": "x"}]},
        [],
        "WRONG_SYNTAX",
        "$.devices[0].format must be one of",
    ),
    (
        {"devices": [{"device_id": "d", "apikey": "k", "entity_type": "T", "commands": [{}]}]},
        [],
        "BAD_REQUEST",
        "commands are not supported",
    ),
    (
        {
            "devices": [
                {"device_id": "d", "apikey": "k", "entity_type": "T"},
                {"device_id": "d", "apikey": "k", "entity_type": "U"},
            ]
        },
        [],
        "WRONG_SYNTAX",
        "device 'iotagent-json/k/d' appears twice",
    ),
]


@pytest.mark.parametrize(("body", "groups", "name", "fragment"), DEVICE_ERRORS)
def test_every_malformed_device_is_refused_with_its_path(
    body: Any, groups: list[ServiceGroup], name: str, fragment: str
) -> None:
    _refused(lambda: devices_from_json(body, "t", groups), name, fragment)


def test_device_json_shows_the_entity_it_gets_or_what_was_provisioned() -> None:
    device = Device("openiot", "iotagent-json", KEY, "motion003")
    effective = device_to_json(device, TUTORIAL_GROUP)
    assert effective == {
        "device_id": "motion003",
        "service": "openiot",
        "service_path": "/",
        "apikey": KEY,
        "format": "iotagent-json",
        "entity_name": "urn:ngsi-ld:Device:motion003",
        "entity_type": "Device",
        "attributes": [],
        "static_attributes": [],
    }
    stored = device_to_json(device, TUTORIAL_GROUP, effective=False)
    assert "entity_name" not in stored and "entity_type" not in stored
    other_tenant = ServiceGroup("prato", "iotagent-json", KEY, "Device")
    assert "entity_name" not in device_to_json(device, other_tenant)


def test_a_device_reads_back_from_its_own_json() -> None:
    [device] = devices_from_json(TUTORIAL_DEVICES, "openiot", [TUTORIAL_GROUP])
    again = devices_from_json({"devices": [device_to_json(device)]}, "openiot", [TUTORIAL_GROUP])
    assert again == [device]


def test_a_device_update_keeps_its_key_and_replaces_what_is_given() -> None:
    [device] = devices_from_json(TUTORIAL_DEVICES, "openiot", [TUTORIAL_GROUP])
    changed = updated_device(
        device, {"entity_name": "urn:ngsi-ld:Device:t1", "static_attributes": []}, [TUTORIAL_GROUP]
    )
    assert changed.entity_id == "urn:ngsi-ld:Device:t1"
    assert changed.static_attributes == ()
    assert changed.attributes == device.attributes
    for changes in ({"device_id": "x"}, {"apikey": "other"}, {"format": "flat-json"}):
        _refused(
            lambda changes=changes: updated_device(device, changes, [TUTORIAL_GROUP]),
            "BAD_REQUEST",
            "cannot be changed",
        )


# -------------------------------------------------------------- provisioning files


def test_a_file_provisions_groups_then_devices_of_those_groups() -> None:
    body = copy.deepcopy(TUTORIAL_SERVICES) | copy.deepcopy(TUTORIAL_DEVICES)
    plan = provisioning_from_json(body, "openiot")
    assert [g.group for g in plan.groups] == [KEY]
    assert [(d.device_id, d.group) for d in plan.devices] == [("temperature001", KEY)]
    only_devices = provisioning_from_json(TUTORIAL_DEVICES, "openiot", [TUTORIAL_GROUP])
    assert only_devices.groups == () and len(only_devices.devices) == 1


def test_a_file_needs_services_or_devices() -> None:
    _refused(lambda: provisioning_from_json({"entities": []}, "t"), "WRONG_SYNTAX", '"services"')
    _refused(lambda: provisioning_from_json("x", "t"), "WRONG_SYNTAX", "$ must be a JSON object")
