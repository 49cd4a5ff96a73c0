"""The FIWARE IoT Agent provisioning API on the device registry, so its tooling works as is.

Routes: `GET/POST/PUT/DELETE /iot/services` (PUT and DELETE pick the group with the query
parameters `apikey` and `resource`), `GET/POST /iot/devices` (GET pages with `limit`,
default 20, and `offset`), `GET/PUT/DELETE /iot/devices/{device_id}`. The tenant is the
`fiware-service` header (required, lower-cased); `fiware-servicepath` may only be `/`.
POST answers 201, PUT and DELETE 204; errors are the IoT Agent's `{"name", "message"}`
with 400 (WRONG_SYNTAX, BAD_REQUEST, MISSING_HEADERS), 404 (DEVICE_NOT_FOUND,
DEVICE_GROUP_NOT_FOUND), 409 (DUPLICATE_GROUP, DUPLICATE_DEVICE_ID, AMBIGUOUS_DEVICE_ID),
413 (PAYLOAD_TOO_LARGE), 503 (REGISTRY_UNAVAILABLE: the store is not reachable) or
500 (REGISTRY_ERROR: the store refused a write).

Contesto's extensions of the bodies:

- `"format"` on groups and devices: how the messages arrive, `"iotagent-json"` (the
  default; `apikey` is the IoT Agent API key), `"ttn-v3"` (`apikey` is the TTN application
  id), `"chirpstack-v4"` (`apikey` is the ChirpStack application id) or `"flat-json"`.
  The routes that name one group or device also take `?format=`; a device without format
  takes its group's.
- `"model"` and `"profile"`: names in the datamodels catalogue ("AirQualityObserved",
  "toscana/AirQualityObserved") that the entities are validated against; a profile implies
  its model, and a missing `entity_type` is the model's name.
- `"scale"` and `"offset"` per attribute: a numeric measure becomes `value * scale + offset`.
- `"timestamp"`: true/false as in the IoT Agent (observedAt is always written) or the name
  of the measure that carries the observation time (default TimeInstant).
- `"entity_id_prefix"` on groups: entity ids are the prefix + device id (default
  `urn:ngsi-ld:<entity_type>:`).

Attribute types geo:json, geo:point and GeoProperty map to a GeoProperty, Relationship to
a Relationship, any other to a Property. `resource` is accepted and not needed: over MQTT
the apikey alone names a group. `lazy`, `commands` and expressions are refused.

In the regional profile pass `access` (see `_iot_access.py`): requests then need
`Authorization: Bearer <key>` of the `fiware-service` tenant, 401 (UNAUTHORIZED),
403 (ACCESS_FORBIDDEN) or 404 (TENANT_NOT_FOUND) otherwise, and every change is audited.

Mount it with `app.include_router(iot_agent_router(registry, access=...))`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from regional_tenants import AccessRefused, Role

from ._devices import Device, ServiceGroup
from ._iot_access import ProvisioningAccess
from ._messages import Format
from ._provisioning import (
    FORMATS,
    ProvisioningError,
    check_service_path,
    device_to_json,
    devices_from_json,
    group_to_json,
    groups_from_json,
    tenant_of,
    updated_device,
    updated_group,
)
from ._registry import (
    AmbiguousDevice,
    DeviceRegistry,
    RegistryConflict,
    RegistryError,
    RegistryUnavailable,
)

__all__ = ["MAX_BODY_BYTES", "iot_agent_router"]

MAX_BODY_BYTES = 1 << 20
MAX_PAGE = 1000
log = logging.getLogger("sensor_ingest.iot_api")
P = ParamSpec("P")
Handler = Callable[P, Awaitable[Response]]


class _Refused(Exception):
    """An answer other than success, in the IoT Agent's error shape."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


def iot_agent_router(
    registry: DeviceRegistry,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    access: ProvisioningAccess | None = None,
) -> APIRouter:
    """The `/iot/services` and `/iot/devices` routes on `registry` (see the module's doc)."""
    router = APIRouter(tags=["IoT Agent provisioning"])

    async def enter(request: Request, needed: Role) -> tuple[str, str]:
        """The request's tenant and actor, once `access` admits it."""
        tenant = _tenant(request)
        if access is None:
            return tenant, "anonymous"
        return tenant, await access.admit(request.headers, tenant, needed)

    async def audit(tenant: str, actor: str, action: str, detail: dict[str, Any]) -> None:
        if access is not None:
            await access.audit(tenant, actor, action, detail)

    # ------------------------------------------------------------ service groups

    @router.get("/iot/services")
    @_answers("DUPLICATE_GROUP")
    async def retrieve_groups(request: Request) -> Response:
        tenant, _ = await enter(request, "reader")
        limit, offset = _page(request)
        groups = await registry.list_groups(tenant)
        apikey = request.query_params.get("apikey")
        if apikey:
            groups = [g for g in groups if g.group == apikey]
        page = groups[offset : offset + limit]
        return JSONResponse({"count": len(groups), "services": [group_to_json(g) for g in page]})

    @router.post("/iot/services", status_code=201)
    @_answers("DUPLICATE_GROUP")
    async def create_groups(request: Request) -> Response:
        tenant, actor = await enter(request, "writer")
        groups = groups_from_json(await _body(request, max_body_bytes), tenant)
        for group in groups:
            if await registry.get_group(tenant, group.format, group.group) is not None:
                raise _Refused(
                    409,
                    "DUPLICATE_GROUP",
                    f"A service group with apikey {group.group!r} ({group.format}) already "
                    f"exists in service {tenant!r}; change it with PUT /iot/services",
                )
        created: list[ServiceGroup] = []
        try:
            for group in groups:
                await registry.put_group(group, create=True)
                created.append(group)
        except RegistryError:
            for group in created:
                await registry.delete_group(tenant, group.format, group.group)
            raise
        for group in created:
            await audit(tenant, actor, "iot.group.created", _group_detail(group))
        return Response(status_code=201)

    @router.put("/iot/services", status_code=204)
    @_answers("DUPLICATE_GROUP")
    async def update_group(request: Request) -> Response:
        tenant, actor = await enter(request, "writer")
        group = await _selected_group(registry, request, tenant)
        changed = updated_group(group, await _body(request, max_body_bytes))
        await registry.put_group(changed)
        await audit(tenant, actor, "iot.group.updated", _group_detail(changed))
        return Response(status_code=204)

    @router.delete("/iot/services", status_code=204)
    @_answers("DUPLICATE_GROUP")
    async def delete_group(request: Request) -> Response:
        tenant, actor = await enter(request, "writer")
        group = await _selected_group(registry, request, tenant)
        await registry.delete_group(tenant, group.format, group.group)
        await audit(tenant, actor, "iot.group.deleted", _group_detail(group))
        return Response(status_code=204)

    # ------------------------------------------------------------------- devices

    @router.get("/iot/devices")
    @_answers("DUPLICATE_DEVICE_ID")
    async def retrieve_devices(request: Request) -> Response:
        tenant, _ = await enter(request, "reader")
        limit, offset = _page(request)
        devices, total = await registry.list_devices(tenant, limit=limit, offset=offset)
        groups = {(g.format, g.group): g for g in await registry.list_groups(tenant)}
        body = [device_to_json(d, groups.get((d.format, d.group))) for d in devices]
        return JSONResponse({"count": total, "devices": body})

    @router.post("/iot/devices", status_code=201)
    @_answers("DUPLICATE_DEVICE_ID")
    async def create_devices(request: Request) -> Response:
        tenant, actor = await enter(request, "writer")
        body = await _body(request, max_body_bytes)
        devices = devices_from_json(body, tenant, await registry.list_groups(tenant))
        for device in devices:
            found = await registry.get_device(
                tenant, device.device_id, format=device.format, group=device.group
            )
            if found is not None:
                raise _Refused(
                    409,
                    "DUPLICATE_DEVICE_ID",
                    f"A device with id {device.device_id!r} already exists in group "
                    f"{device.group!r} ({device.format}) of service {tenant!r}; change it with "
                    f"PUT /iot/devices/{device.device_id}",
                )
        created: list[Device] = []
        try:
            for device in devices:
                await registry.put_device(device, create=True)
                created.append(device)
        except RegistryError:
            for device in created:
                await registry.delete_device(
                    tenant, device.device_id, format=device.format, group=device.group
                )
            raise
        for device in created:
            await audit(tenant, actor, "iot.device.created", _device_detail(device))
        return Response(status_code=201)

    @router.get("/iot/devices/{device_id}")
    @_answers("DUPLICATE_DEVICE_ID")
    async def retrieve_device(request: Request, device_id: str) -> Response:
        tenant, _ = await enter(request, "reader")
        device = await _selected_device(registry, request, tenant, device_id)
        group = await registry.get_group(tenant, device.format, device.group)
        return JSONResponse(device_to_json(device, group))

    @router.put("/iot/devices/{device_id}", status_code=204)
    @_answers("DUPLICATE_DEVICE_ID")
    async def update_device(request: Request, device_id: str) -> Response:
        tenant, actor = await enter(request, "writer")
        device = await _selected_device(registry, request, tenant, device_id)
        changes = await _body(request, max_body_bytes)
        changed = updated_device(device, changes, await registry.list_groups(tenant))
        await registry.put_device(changed)
        await audit(tenant, actor, "iot.device.updated", _device_detail(changed))
        return Response(status_code=204)

    @router.delete("/iot/devices/{device_id}", status_code=204)
    @_answers("DUPLICATE_DEVICE_ID")
    async def delete_device(request: Request, device_id: str) -> Response:
        tenant, actor = await enter(request, "writer")
        device = await _selected_device(registry, request, tenant, device_id)
        await registry.delete_device(tenant, device_id, format=device.format, group=device.group)
        await audit(tenant, actor, "iot.device.deleted", _device_detail(device))
        return Response(status_code=204)

    return router


def _answers(conflict: str) -> Callable[[Handler[P]], Handler[P]]:
    """Turn every failure of a route into the IoT Agent's error shape; `conflict` names a 409."""

    def decorate(handler: Handler[P]) -> Handler[P]:
        @functools.wraps(handler)
        async def answered(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                return await handler(*args, **kwargs)
            except _Refused as refused:
                return _error(refused.status, refused.name, refused.message)
            except AccessRefused as refused:
                answer = _error(refused.status, _ACCESS_ERRORS[refused.status], refused.message)
                if refused.status == 401:
                    answer.headers["WWW-Authenticate"] = "Bearer"
                return answer
            except ProvisioningError as error:
                return _error(400, error.name, error.message)
            except AmbiguousDevice as error:
                return _error(409, "AMBIGUOUS_DEVICE_ID", f"{error}; add ?apikey= (and ?format=)")
            except RegistryConflict as error:
                return _error(409, conflict, str(error))
            except RegistryUnavailable as error:
                log.warning("device registry unavailable: %s", error)
                return _error(503, "REGISTRY_UNAVAILABLE", "the device registry is not reachable")
            except RegistryError as error:
                log.error("device registry failed: %s", error)
                return _error(500, "REGISTRY_ERROR", str(error))
            except Exception:
                log.exception("provisioning request failed unexpectedly")
                return _error(500, "INTERNAL_ERROR", "the provisioning API failed; see its log")

        return answered

    return decorate


_ACCESS_ERRORS = {401: "UNAUTHORIZED", 403: "ACCESS_FORBIDDEN", 404: "TENANT_NOT_FOUND"}


def _group_detail(group: ServiceGroup) -> dict[str, Any]:
    return {"apikey": group.group, "format": group.format}


def _device_detail(device: Device) -> dict[str, Any]:
    return {"device_id": device.device_id, "apikey": device.group, "format": device.format}


def _error(status: int, name: str, message: str) -> Response:
    return JSONResponse({"name": name, "message": message}, status_code=status)


def _tenant(request: Request) -> str:
    tenant = tenant_of(request.headers.get("fiware-service"))
    check_service_path(request.headers.get("fiware-servicepath"))
    return tenant


def _page(request: Request) -> tuple[int, int]:
    limit = _count(request, "limit", 20)
    if not 1 <= limit <= MAX_PAGE:
        raise ProvisioningError(f"limit must be 1-{MAX_PAGE}; got {limit}", "BAD_REQUEST")
    return limit, _count(request, "offset", 0)


def _count(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise ProvisioningError(
            f"{name} must be a whole number of at most 9 digits; got {text!r}", "BAD_REQUEST"
        )
    return int(text)


def _format_param(request: Request) -> Format | None:
    value = request.query_params.get("format")
    if value is None or value == "":
        return None
    for known in FORMATS:
        if value == known:
            return known
    raise ProvisioningError(
        f"format must be one of {', '.join(FORMATS)}; got {value!r}", "BAD_REQUEST"
    )


async def _selected_group(registry: DeviceRegistry, request: Request, tenant: str) -> ServiceGroup:
    """The group named by `?apikey=` (and `?format=` when the key has several formats)."""
    apikey = request.query_params.get("apikey")
    if not apikey:
        raise ProvisioningError(
            "the apikey query parameter is required: /iot/services?apikey=KEY&resource=PATH",
            "BAD_REQUEST",
        )
    format_ = _format_param(request)
    found = [
        g
        for g in await registry.list_groups(tenant)
        if g.group == apikey and (format_ is None or g.format == format_)
    ]
    if not found:
        raise _Refused(
            404,
            "DEVICE_GROUP_NOT_FOUND",
            f"Couldn't find device group for apikey {apikey!r}"
            + (f" ({format_})" if format_ else "")
            + f" in service {tenant!r}",
        )
    if len(found) > 1:
        formats = ", ".join(g.format for g in found)
        raise ProvisioningError(
            f"apikey {apikey!r} names groups of formats {formats}; add ?format=", "BAD_REQUEST"
        )
    return found[0]


async def _selected_device(
    registry: DeviceRegistry, request: Request, tenant: str, device_id: str
) -> Device:
    """The device named by the path (and `?apikey=`, `?format=` when its id is ambiguous)."""
    apikey = request.query_params.get("apikey") or None
    device = await registry.get_device(
        tenant, device_id, format=_format_param(request), group=apikey
    )
    if device is None:
        raise _Refused(
            404,
            "DEVICE_NOT_FOUND",
            f"No device was found with id {device_id!r} in service {tenant!r}",
        )
    return device


async def _body(request: Request, limit: int) -> Any:
    """The request's JSON body (no NaN or Infinity), read up to `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(
                413, "PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes; split it"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ProvisioningError("the request needs a JSON body")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise ProvisioningError(f"the body is not valid JSON: {error}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
