"""The device registry on the real store: records, tenant isolation, resolve and its cache."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from sensor_ingest._devices import (
    AttributeMapping,
    Binding,
    Device,
    ServiceGroup,
    StaticAttribute,
)
from sensor_ingest._messages import DeviceKey, Format, Rejection
from sensor_ingest._registry import (
    AmbiguousDevice,
    DeviceRegistry,
    RegistryConflict,
    RegistryUnavailable,
)

pytestmark = pytest.mark.integration

Database = AsyncDatabase[dict[str, Any]]


@pytest.fixture(scope="module")
async def database(store_url: str) -> AsyncIterator[Database]:
    """A database of this module only, dropped at its end."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    name = f"test_registry_{uuid4().hex[:8]}"
    try:
        await DeviceRegistry(client[name]).ensure_indexes()
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(database: Database, clock: Clock) -> DeviceRegistry:
    return DeviceRegistry(database, clock=clock)


def _name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def _group(tenant: str, key: str, **changes: Any) -> ServiceGroup:
    values: dict[str, Any] = {
        "tenant": tenant,
        "format": "iotagent-json",
        "group": key,
        "entity_type": "AirQualityObserved",
        "attributes": (AttributeMapping("t", "temperature", unit_code="CEL"),),
        **changes,
    }
    return ServiceGroup(**values)


async def test_indexes_are_idempotent_and_enforce_the_keys(
    registry: DeviceRegistry, database: Database
) -> None:
    await registry.ensure_indexes()
    groups = await database["service_groups"].index_information()
    devices = await database["devices"].index_information()
    assert any(
        spec.get("unique") and [k for k, _ in spec["key"]] == ["format", "group"]
        for spec in groups.values()
    )
    assert any(
        spec.get("unique") and [k for k, _ in spec["key"]] == ["format", "group", "device_id"]
        for spec in devices.values()
    )


async def test_a_group_is_stored_read_listed_replaced_and_deleted(
    registry: DeviceRegistry, database: Database
) -> None:
    tenant, key = _name("t"), _name("k")
    group = _group(
        tenant,
        key,
        profile="toscana/AirQualityObserved",
        model="AirQualityObserved",
        static_attributes=(
            StaticAttribute("location", "GeoProperty", {"type": "Point", "coordinates": [11, 43]}),
            StaticAttribute("info", "Property", {"$ref": "x", "big": 2**70, "a.b": 1}),
        ),
        autoprovision=False,
        explicit_attributes=True,
        timestamp_field="ts",
        entity_id_prefix="urn:ngsi-ld:AirQualityObserved:firenze:",
    )
    assert await registry.put_group(group) is True
    assert await registry.get_group(tenant, "iotagent-json", key) == group
    stored = await database["service_groups"].find_one({"group": key}, {"_id": 0})
    assert stored is not None and stored["tenant"] == tenant and stored["format"] == "iotagent-json"
    second = _group(tenant, key, format="ttn-v3", entity_type="WeatherObserved")
    assert await registry.put_group(second) is True
    assert await registry.list_groups(tenant) == [group, second]
    changed = _group(tenant, key, autoprovision=True)
    assert await registry.put_group(changed) is False
    assert await registry.get_group(tenant, "iotagent-json", key) == changed
    with pytest.raises(RegistryConflict, match="already exists"):
        await registry.put_group(changed, create=True)
    assert await registry.delete_group(tenant, "iotagent-json", key) is True
    assert await registry.delete_group(tenant, "iotagent-json", key) is False
    assert await registry.list_groups(tenant) == [second]


async def test_a_device_is_stored_read_paged_and_deleted(registry: DeviceRegistry) -> None:
    tenant, key = _name("t"), _name("k")
    await registry.put_group(_group(tenant, key))
    devices = [
        Device(tenant, "iotagent-json", key, f"aq-{n:02d}", entity_type="Thing" if n else None)
        for n in (3, 1, 2, 0)
    ]
    for device in devices:
        assert await registry.put_device(device) is True
    detailed = Device(
        tenant,
        "iotagent-json",
        key,
        "aq-01",
        entity_id="urn:ngsi-ld:AirQualityObserved:santa-croce",
        model="AirQualityObserved",
        attributes=(AttributeMapping("h", "relativeHumidity", scale=0.01),),
        static_attributes=(StaticAttribute("refSite", "Relationship", "urn:ngsi-ld:Site:1"),),
    )
    assert await registry.put_device(detailed) is False
    assert await registry.get_device(tenant, "aq-01") == detailed
    assert await registry.get_device(tenant, "aq-01", format="iotagent-json", group=key) == detailed
    assert await registry.get_device(tenant, "aq-01", format="ttn-v3") is None
    with pytest.raises(RegistryConflict, match="already exists"):
        await registry.put_device(detailed, create=True)
    page, total = await registry.list_devices(tenant, limit=2, offset=1)
    assert total == 4
    assert [d.device_id for d in page] == ["aq-01", "aq-02"]
    assert await registry.delete_device(tenant, "aq-02") is True
    assert await registry.delete_device(tenant, "aq-02") is False
    assert (await registry.list_devices(tenant, limit=10, offset=0))[1] == 3


async def test_a_device_id_in_two_groups_must_be_named_with_its_group(
    registry: DeviceRegistry,
) -> None:
    tenant, one, two = _name("t"), _name("k"), _name("k")
    for key in (one, two):
        await registry.put_device(Device(tenant, "flat-json", key, "bay-1", entity_type="P"))
    with pytest.raises(AmbiguousDevice, match="several groups"):
        await registry.get_device(tenant, "bay-1")
    with pytest.raises(AmbiguousDevice):
        await registry.delete_device(tenant, "bay-1")
    found = await registry.get_device(tenant, "bay-1", group=two)
    assert found is not None and found.group == two
    assert await registry.delete_device(tenant, "bay-1", group=one) is True
    assert await registry.get_device(tenant, "bay-1") == found


async def test_a_tenant_never_sees_nor_touches_another_tenants_records(
    registry: DeviceRegistry,
) -> None:
    firenze, prato, key = _name("firenze"), _name("prato"), _name("k")
    await registry.put_group(_group(firenze, key))
    await registry.put_device(Device(firenze, "iotagent-json", key, "aq-1"))
    # The API key names Firenze: Prato can neither take it over nor add devices under it.
    with pytest.raises(RegistryConflict, match="belongs to another service"):
        await registry.put_group(_group(prato, key))
    with pytest.raises(RegistryConflict, match="belongs to another service"):
        await registry.put_group(_group(prato, key), create=True)
    with pytest.raises(RegistryConflict, match="belongs to another service"):
        await registry.put_device(Device(prato, "iotagent-json", key, "aq-2", entity_type="T"))
    # Prato sees nothing of Firenze's and deletes nothing of it.
    assert await registry.get_group(prato, "iotagent-json", key) is None
    assert await registry.list_groups(prato) == []
    assert await registry.get_device(prato, "aq-1") is None
    assert await registry.list_devices(prato, limit=10, offset=0) == ([], 0)
    assert await registry.delete_group(prato, "iotagent-json", key) is False
    assert await registry.delete_device(prato, "aq-1") is False
    assert await registry.get_group(firenze, "iotagent-json", key) is not None
    assert await registry.get_device(firenze, "aq-1") is not None
    # The key is Firenze's in every format: Prato cannot take it in another one either.
    with pytest.raises(RegistryConflict, match="belongs to another service"):
        await registry.put_group(_group(prato, key, format="ttn-v3"))
    assert await registry.put_group(_group(firenze, key, format="ttn-v3")) is True


async def test_a_key_used_by_another_tenants_devices_is_not_free(
    registry: DeviceRegistry,
) -> None:
    firenze, prato, key = _name("firenze"), _name("prato"), _name("k")
    await registry.put_device(Device(firenze, "flat-json", key, "bay-1", entity_type="ParkingSpot"))
    with pytest.raises(RegistryConflict, match="belongs to another service"):
        await registry.put_group(_group(prato, key, format="flat-json"))
    with pytest.raises(RegistryConflict, match="belongs to another service"):
        await registry.put_device(Device(prato, "flat-json", key, "bay-1", entity_type="P"))
    assert await registry.put_group(_group(firenze, key, format="flat-json")) is True


# --------------------------------------------------------------------------- resolve


async def test_resolve_binds_a_device_with_its_group(registry: DeviceRegistry) -> None:
    tenant, key = _name("t"), _name("k")
    await registry.put_group(_group(tenant, key, autoprovision=False, profile="toscana/X"))
    await registry.put_device(
        Device(
            tenant,
            "iotagent-json",
            key,
            "aq-1",
            attributes=(AttributeMapping("t", "airTemperature", scale=0.1),),
        )
    )
    binding = await registry.resolve("iotagent-json", DeviceKey(key, "aq-1"))
    assert isinstance(binding, Binding)
    assert binding.tenant == tenant
    assert binding.entity_id == "urn:ngsi-ld:AirQualityObserved:aq-1"
    assert binding.profile == "toscana/X"
    assert binding.attributes == {"t": AttributeMapping("t", "airTemperature", scale=0.1)}


async def test_resolve_binds_a_device_without_group_by_its_own_type(
    registry: DeviceRegistry,
) -> None:
    tenant, key = _name("t"), _name("k")
    await registry.put_device(
        Device(tenant, "chirpstack-v4", key, "0004a30b001c1234", entity_type="WeatherObserved")
    )
    binding = await registry.resolve("chirpstack-v4", DeviceKey(key, "0004a30b001c1234"))
    assert isinstance(binding, Binding)
    assert (binding.tenant, binding.entity_type) == (tenant, "WeatherObserved")
    assert binding.entity_id == "urn:ngsi-ld:WeatherObserved:0004a30b001c1234"


async def test_resolve_autoprovisions_a_device_of_an_open_group(registry: DeviceRegistry) -> None:
    tenant, key = _name("t"), _name("k")
    await registry.put_group(_group(tenant, key, format="ttn-v3", autoprovision=True))
    binding = await registry.resolve("ttn-v3", DeviceKey(key, "eui-70b3d57ed0000001"))
    assert isinstance(binding, Binding)
    assert binding.entity_id == "urn:ngsi-ld:AirQualityObserved:eui-70b3d57ed0000001"
    # The same key in another format is another group: unknown there.
    other = await registry.resolve("iotagent-json", DeviceKey(key, "eui-70b3d57ed0000001"))
    assert isinstance(other, Rejection)


async def test_resolve_rejects_unknown_devices_saying_how_to_provision_them(
    registry: DeviceRegistry,
) -> None:
    tenant, closed, key = _name("t"), _name("k"), _name("k")
    await registry.put_group(_group(tenant, closed, autoprovision=False))
    await registry.put_device(Device(tenant, "flat-json", key, "typeless"))
    cases: dict[tuple[Format, str, str], str] = {
        ("iotagent-json", closed, "aq-9"): "does not autoprovision",
        ("iotagent-json", _name("nokey"), "aq-9"): "neither the device nor a group",
        ("flat-json", key, "typeless"): "has no entity_type and its group",
    }
    for (format_, group, device), why in cases.items():
        rejection = await registry.resolve(format_, DeviceKey(group, device))
        assert isinstance(rejection, Rejection)
        assert rejection.reason == "unknown-device"
        assert why in rejection.message
        for name in (format_, group, device):
            assert name in rejection.message
        assert "POST /iot/devices" in rejection.hint
        assert "contesto devices provision" in rejection.hint


async def test_writes_through_the_registry_refresh_its_cache_at_once(
    registry: DeviceRegistry,
) -> None:
    tenant, key = _name("t"), _name("k")
    device_key = DeviceKey(key, "aq-1")
    assert isinstance(await registry.resolve("iotagent-json", device_key), Rejection)
    await registry.put_group(_group(tenant, key))
    first = await registry.resolve("iotagent-json", device_key)
    assert isinstance(first, Binding) and first.entity_type == "AirQualityObserved"
    await registry.put_device(Device(tenant, "iotagent-json", key, "aq-1", entity_type="Thing"))
    second = await registry.resolve("iotagent-json", device_key)
    assert isinstance(second, Binding) and second.entity_type == "Thing"
    await registry.put_group(_group(tenant, key, profile="toscana/AirQualityObserved"))
    third = await registry.resolve("iotagent-json", device_key)
    assert isinstance(third, Binding) and third.profile == "toscana/AirQualityObserved"
    await registry.delete_group(tenant, "iotagent-json", key)
    fourth = await registry.resolve("iotagent-json", device_key)
    assert isinstance(fourth, Binding) and fourth.profile is None  # its own type still binds
    await registry.delete_device(tenant, "aq-1")
    assert isinstance(await registry.resolve("iotagent-json", device_key), Rejection)


async def test_writes_made_elsewhere_show_after_the_ttl(
    registry: DeviceRegistry, database: Database, clock: Clock
) -> None:
    tenant, key = _name("t"), _name("k")
    elsewhere = DeviceRegistry(database)
    device_key = DeviceKey(key, "aq-1")
    assert isinstance(await registry.resolve("iotagent-json", device_key), Rejection)
    await elsewhere.put_group(_group(tenant, key))
    clock.now += 4.9
    assert isinstance(await registry.resolve("iotagent-json", device_key), Rejection)
    clock.now += 0.2
    assert isinstance(await registry.resolve("iotagent-json", device_key), Binding)
    await elsewhere.delete_group(tenant, "iotagent-json", key)
    assert isinstance(await registry.resolve("iotagent-json", device_key), Binding)
    registry.cache_ttl_s = 0.0  # settable: no caching at all
    clock.now += 5.1
    assert isinstance(await registry.resolve("iotagent-json", device_key), Rejection)
    await elsewhere.put_group(_group(tenant, key))
    assert isinstance(await registry.resolve("iotagent-json", device_key), Binding)


async def test_the_devices_of_a_group_read_the_group_once_per_ttl(
    store_url: str, database: Database, clock: Clock
) -> None:
    """Many autoprovisioned devices of one group (a city's sensors) cost one read of the
    group per TTL, not one each; an answer made from the group as read then is as old as
    that read, so a change made elsewhere still shows within the TTL."""
    reads: list[str] = []

    class GroupReads(CommandListener):
        def started(self, event: CommandStartedEvent) -> None:
            if event.command_name == "find":
                reads.append(str(event.command["find"]))

        def succeeded(self, event: CommandSucceededEvent) -> None:
            pass

        def failed(self, event: CommandFailedEvent) -> None:
            pass

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        store_url, tz_aware=True, event_listeners=[GroupReads()]
    )
    try:
        registry = DeviceRegistry(client[database.name], clock=clock)
        tenant, key = _name("t"), _name("k")
        await registry.put_group(_group(tenant, key))
        reads.clear()
        for n in range(20):
            clock.now += 0.1
            binding = await registry.resolve("iotagent-json", DeviceKey(key, f"aq-{n}"))
            assert isinstance(binding, Binding) and binding.profile is None
        assert (reads.count("service_groups"), reads.count("devices")) == (1, 20)
        await DeviceRegistry(database).put_group(
            _group(tenant, key, profile="toscana/AirQualityObserved")
        )
        clock.now += 2.9  # 4.9 s after the group was read: the last answer is still cached
        late = await registry.resolve("iotagent-json", DeviceKey(key, "aq-19"))
        assert isinstance(late, Binding) and late.profile is None
        clock.now += 0.2  # past the TTL of the group's read, not of the last answer's
        fresh = await registry.resolve("iotagent-json", DeviceKey(key, "aq-19"))
        assert isinstance(fresh, Binding) and fresh.profile == "toscana/AirQualityObserved"
    finally:
        await client.close()


async def test_the_cache_holds_at_most_its_capacity(database: Database, clock: Clock) -> None:
    registry = DeviceRegistry(database, cache_entries=2, clock=clock)
    elsewhere = DeviceRegistry(database)
    tenant, keys = _name("t"), [_name("k") for _ in range(3)]
    for key in keys:
        assert isinstance(await registry.resolve("flat-json", DeviceKey(key, "d")), Rejection)
    for key in keys:
        await elsewhere.put_group(_group(tenant, key, format="flat-json"))
    # The oldest answer made room for the third; the two newest are still cached.
    first = await registry.resolve("flat-json", DeviceKey(keys[0], "d"))
    assert isinstance(first, Binding)
    assert isinstance(await registry.resolve("flat-json", DeviceKey(keys[2], "d")), Rejection)


async def test_a_store_that_cannot_be_reached_is_unavailable_not_an_unknown_device() -> None:
    # A host that never resolves (RFC 2606): no socket is opened, so none is left behind.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://registry-store.invalid:27017/?directConnection=true",
        serverSelectionTimeoutMS=300,
    )
    try:
        registry = DeviceRegistry(client["nowhere"])
        with pytest.raises(RegistryUnavailable, match="store is not reachable"):
            await registry.resolve("iotagent-json", DeviceKey("k", "d"))
        with pytest.raises(RegistryUnavailable):
            await registry.put_group(_group("t", "k"))
    finally:
        await client.close()
