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

The routes declare their headers, query parameters and bodies (`_provisioning_schemas.py`),
so `/docs` and `/openapi.json` describe them; every failure, including a parameter FastAPI
refuses, is answered by one handler in the IoT Agent's shape.

Mount it with `app.include_router(iot_agent_router(registry, access=...))`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BeforeValidator

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
from ._provisioning_schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    DeviceChanges,
    DevicesBody,
    GroupChanges,
    ServicesBody,
    request_body,
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
log = logging.getLogger("sensor_ingest.iot_api")
Record = ServiceGroup | Device


class _Refused(Exception):
    """An answer other than success, in the IoT Agent's error shape."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


@dataclass(slots=True, frozen=True)
class _Caller:
    """Who a request acts for: the tenant, and the actor the audit log names."""

    tenant: str
    actor: str


# ------------------------------------------------------------------ parameters


def _whole_number(name: str, default: int, maximum: int | None = None) -> BeforeValidator:
    """A query parameter of digits only (empty means `default`), at most `maximum`."""

    def parsed(text: object) -> int:
        if text is None or text == "":
            return default
        if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 9:
            raise ProvisioningError(
                f"{name} must be a whole number of at most 9 digits; got {text!r}", "BAD_REQUEST"
            )
        number = int(text)
        if maximum is not None and not 1 <= number <= maximum:
            raise ProvisioningError(f"{name} must be 1-{maximum}; got {number}", "BAD_REQUEST")
        return number

    return BeforeValidator(parsed)


def _known_format(value: object) -> Format | None:
    if value is None or value == "":
        return None
    for known in FORMATS:
        if value == known:
            return known
    raise ProvisioningError(
        f"format must be one of {', '.join(FORMATS)}; got {value!r}", "BAD_REQUEST"
    )


Service = Annotated[
    str | None,
    Header(
        alias="fiware-service",
        description="Required: the tenant that owns the devices (case-insensitive).",
    ),
]
ServicePath = Annotated[
    str | None,
    Header(alias="fiware-servicepath", description="Only `/` (or none) is supported."),
]
Authorization = Annotated[
    str | None,
    Header(
        description="`Bearer <key>` of the fiware-service tenant, where keys are required "
        "(the regional profile)."
    ),
]
Limit = Annotated[
    int,
    Query(description=f"Entries per page, 1-{MAX_PAGE}.", ge=1, le=MAX_PAGE),
    _whole_number("limit", DEFAULT_PAGE, MAX_PAGE),
]
Offset = Annotated[int, Query(description="Entries to skip.", ge=0), _whole_number("offset", 0)]
ApiKey = Annotated[
    str | None,
    Query(description="The service group's API key (required to update or delete a group)."),
]
Resource = Annotated[
    str | None,
    Query(description="The IoT Agent's resource path; accepted, not needed over MQTT."),
]
FormatParam = Annotated[
    Format | None,
    Query(description="The message format, when the apikey or device id has several."),
    BeforeValidator(_known_format),
]


def iot_agent_router(
    registry: DeviceRegistry,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    access: ProvisioningAccess | None = None,
) -> APIRouter:
    """The `/iot/services` and `/iot/devices` routes on `registry` (see the module's doc)."""
    groups = APIRouter(tags=["IoT Agent provisioning"], route_class=_answering("DUPLICATE_GROUP"))
    devices = APIRouter(
        tags=["IoT Agent provisioning"], route_class=_answering("DUPLICATE_DEVICE_ID")
    )

    def caller(needed: Role) -> Callable[..., Awaitable[_Caller]]:
        """The dependency that admits a request which needs the role `needed`."""

        async def admitted(
            service: Service = None,
            service_path: ServicePath = None,
            authorization: Authorization = None,
        ) -> _Caller:
            tenant = tenant_of(service)
            check_service_path(service_path)
            if access is None:
                return _Caller(tenant, "anonymous")
            headers = {"authorization": authorization} if authorization is not None else {}
            return _Caller(tenant, await access.admit(headers, tenant, needed))

        return admitted

    # Defaults, not `Annotated` aliases: the annotations of these routes are read as
    # module-level names, and the dependencies close over this router's `access`.
    reader = Depends(caller("reader"))
    writer = Depends(caller("writer"))

    async def body(request: Request) -> Any:
        return await _body(request, max_body_bytes)

    async def create(who: _Caller, records: Sequence[Record]) -> Response:
        """Create every record or none; 409 when the tenant has one of them already."""
        for record in records:
            if await registry.exists(record):
                raise _Refused(409, _conflict_name(record), _duplicate(record))
        await registry.create_all(records)
        for record in records:
            await audit(who, "created", record)
        return Response(status_code=201)

    async def replace(who: _Caller, record: Record) -> Response:
        await registry.put(record)
        await audit(who, "updated", record)
        return Response(status_code=204)

    async def remove(who: _Caller, record: Record) -> Response:
        await registry.remove(record)
        await audit(who, "deleted", record)
        return Response(status_code=204)

    async def audit(who: _Caller, what: str, record: Record) -> None:
        if access is not None:
            await access.audit(who.tenant, who.actor, _action(record, what), _detail(record))

    async def selected_group(
        tenant: str, apikey: str | None, format_: Format | None
    ) -> ServiceGroup:
        """The group named by `?apikey=` (and `?format=` when the key has several formats)."""
        if not apikey:
            raise ProvisioningError(
                "the apikey query parameter is required: /iot/services?apikey=KEY&resource=PATH",
                "BAD_REQUEST",
            )
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

    async def selected_device(
        tenant: str, device_id: str, apikey: str | None, format_: Format | None
    ) -> Device:
        """The device named by the path (and `?apikey=`, `?format=` when its id is ambiguous)."""
        device = await registry.get_device(tenant, device_id, format=format_, group=apikey or None)
        if device is None:
            raise _Refused(
                404,
                "DEVICE_NOT_FOUND",
                f"No device was found with id {device_id!r} in service {tenant!r}",
            )
        return device

    # ------------------------------------------------------------ service groups

    @groups.get("/iot/services")
    async def retrieve_groups(
        who: _Caller = reader,
        limit: Limit = DEFAULT_PAGE,
        offset: Offset = 0,
        apikey: ApiKey = None,
    ) -> Response:
        found = await registry.list_groups(who.tenant)
        if apikey:
            found = [g for g in found if g.group == apikey]
        page = found[offset : offset + limit]
        return JSONResponse({"count": len(found), "services": [group_to_json(g) for g in page]})

    @groups.post(
        "/iot/services", status_code=201, openapi_extra={"requestBody": request_body(ServicesBody)}
    )
    async def create_groups(request: Request, who: _Caller = writer) -> Response:
        return await create(who, groups_from_json(await body(request), who.tenant))

    @groups.put(
        "/iot/services", status_code=204, openapi_extra={"requestBody": request_body(GroupChanges)}
    )
    async def update_group(
        request: Request,
        who: _Caller = writer,
        apikey: ApiKey = None,
        resource: Resource = None,
        format: FormatParam = None,
    ) -> Response:
        group = await selected_group(who.tenant, apikey, format)
        return await replace(who, updated_group(group, await body(request)))

    @groups.delete("/iot/services", status_code=204)
    async def delete_group(
        who: _Caller = writer,
        apikey: ApiKey = None,
        resource: Resource = None,
        format: FormatParam = None,
    ) -> Response:
        return await remove(who, await selected_group(who.tenant, apikey, format))

    # ------------------------------------------------------------------- devices

    @devices.get("/iot/devices")
    async def retrieve_devices(
        who: _Caller = reader, limit: Limit = DEFAULT_PAGE, offset: Offset = 0
    ) -> Response:
        page, total = await registry.list_devices(who.tenant, limit=limit, offset=offset)
        own = {(g.format, g.group): g for g in await registry.list_groups(who.tenant)}
        shown = [device_to_json(d, own.get((d.format, d.group))) for d in page]
        return JSONResponse({"count": total, "devices": shown})

    @devices.post(
        "/iot/devices", status_code=201, openapi_extra={"requestBody": request_body(DevicesBody)}
    )
    async def create_devices(request: Request, who: _Caller = writer) -> Response:
        raw = await body(request)
        found = devices_from_json(raw, who.tenant, await registry.list_groups(who.tenant))
        return await create(who, found)

    @devices.get("/iot/devices/{device_id}")
    async def retrieve_device(
        device_id: str, who: _Caller = reader, apikey: ApiKey = None, format: FormatParam = None
    ) -> Response:
        device = await selected_device(who.tenant, device_id, apikey, format)
        group = await registry.get_group(who.tenant, device.format, device.group)
        return JSONResponse(device_to_json(device, group))

    @devices.put(
        "/iot/devices/{device_id}",
        status_code=204,
        openapi_extra={"requestBody": request_body(DeviceChanges)},
    )
    async def update_device(
        request: Request,
        device_id: str,
        who: _Caller = writer,
        apikey: ApiKey = None,
        format: FormatParam = None,
    ) -> Response:
        device = await selected_device(who.tenant, device_id, apikey, format)
        changes = await body(request)
        changed = updated_device(device, changes, await registry.list_groups(who.tenant))
        return await replace(who, changed)

    @devices.delete("/iot/devices/{device_id}", status_code=204)
    async def delete_device(
        device_id: str, who: _Caller = writer, apikey: ApiKey = None, format: FormatParam = None
    ) -> Response:
        return await remove(who, await selected_device(who.tenant, device_id, apikey, format))

    router = APIRouter()
    router.include_router(groups)
    router.include_router(devices)
    return router


# ---------------------------------------------------------------------- errors


def _answering(conflict: str) -> type[APIRoute]:
    """Routes whose every failure is answered by `_answer`; `conflict` names their 409."""

    class IotAgentRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def answered(request: Request) -> Response:
                try:
                    return await handle(request)
                except Exception as error:  # every failure gets the IoT Agent's shape
                    return _answer(error, conflict)

            return answered

    return IotAgentRoute


def _answer(error: Exception, conflict: str) -> Response:
    """The IoT Agent's `{"name", "message"}` answer to a failure."""
    if isinstance(error, RequestValidationError):
        error = _refused_parameter(error)
    if isinstance(error, _Refused):
        return _error(error.status, error.name, error.message)
    if isinstance(error, AccessRefused):
        answer = _error(error.status, _ACCESS_ERRORS[error.status], error.message)
        if error.status == 401:
            answer.headers["WWW-Authenticate"] = "Bearer"
        return answer
    if isinstance(error, ProvisioningError):
        return _error(400, error.name, error.message)
    if isinstance(error, AmbiguousDevice):
        return _error(409, "AMBIGUOUS_DEVICE_ID", f"{error}; add ?apikey= (and ?format=)")
    if isinstance(error, RegistryConflict):
        return _error(409, conflict, str(error))
    if isinstance(error, RegistryUnavailable):
        log.warning("device registry unavailable: %s", error)
        return _error(503, "REGISTRY_UNAVAILABLE", "the device registry is not reachable")
    if isinstance(error, RegistryError):
        log.error("device registry failed: %s", error)
        return _error(500, "REGISTRY_ERROR", str(error))
    log.error("provisioning request failed unexpectedly", exc_info=error)
    return _error(500, "INTERNAL_ERROR", "the provisioning API failed; see its log")


def _refused_parameter(error: RequestValidationError) -> ProvisioningError:
    """The first refused parameter (headers come first), as the IoT Agent names it."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ProvisioningError):
        return cause
    *_, name = first.get("loc", ("request",))
    return ProvisioningError(f"{name}: {first.get('msg', 'not valid')}", "BAD_REQUEST")


_ACCESS_ERRORS = {401: "UNAUTHORIZED", 403: "ACCESS_FORBIDDEN", 404: "TENANT_NOT_FOUND"}


def _error(status: int, name: str, message: str) -> Response:
    return JSONResponse({"name": name, "message": message}, status_code=status)


# --------------------------------------------------------------------- records


def _conflict_name(record: Record) -> str:
    return "DUPLICATE_DEVICE_ID" if isinstance(record, Device) else "DUPLICATE_GROUP"


def _duplicate(record: Record) -> str:
    """Why a POST may not create `record`, and what to do instead."""
    if isinstance(record, Device):
        return (
            f"A device with id {record.device_id!r} already exists in group {record.group!r} "
            f"({record.format}) of service {record.tenant!r}; change it with "
            f"PUT /iot/devices/{record.device_id}"
        )
    return (
        f"A service group with apikey {record.group!r} ({record.format}) already exists in "
        f"service {record.tenant!r}; change it with PUT /iot/services"
    )


def _action(record: Record, what: str) -> str:
    return f"iot.{'device' if isinstance(record, Device) else 'group'}.{what}"


def _detail(record: Record) -> dict[str, Any]:
    detail: dict[str, Any] = {"apikey": record.group, "format": record.format}
    if isinstance(record, Device):
        return {"device_id": record.device_id, **detail}
    return detail


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
