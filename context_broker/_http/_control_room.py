"""The control room: its page (static files of `context_broker/_control_room/`) and the
few routes the page needs beside the NGSI-LD API, under `<path>api/`:

- `config`: the profile, the tile server (none by default) and the resync period; no key.
- `tenants`: the tenants to pick from, in the dev profile only.
- `boundary`: the tenant's comune boundary, as GeoJSON (reader key of the tenant).
- `events`: Server-Sent Events naming the entities changed in the tenant (reader key).

The key guard (`_auth.py`) checks the last two like any NGSI-LD read: the page sends
`Authorization` and `NGSILD-Tenant` as the API expects them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.staticfiles import StaticFiles

from context_broker._errors import Forbidden, ResourceNotFound
from context_broker._http._deps import Deps
from context_broker._http._negotiation import tenant_of
from context_broker._http._responses import json_response
from context_broker._live_feed import LiveFeed
from context_broker._settings import BrokerSettings
from regional_tenants import TenantRegistry, load_comuni

__all__ = ["api_prefix", "install_control_room"]

KEEPALIVE_S = 15.0
# A stream ends after this time and the page opens the next one: a server that shuts down
# never waits longer than this for a page that stays open.
STREAM_LIFETIME_S = 300.0


def api_prefix(settings: BrokerSettings) -> str:
    """Where the control room's routes live: guarded by the key guard like the API."""
    return _mount_path(settings) + "/api/"


def _mount_path(settings: BrokerSettings) -> str:
    return "/" + settings.control_room_path.strip("/")


def install_control_room(app: FastAPI, settings: BrokerSettings) -> None:
    """Add the control room's routes, then its page (the mount serves what they do not)."""
    router = APIRouter(prefix=api_prefix(settings).rstrip("/"), include_in_schema=False)
    router.add_api_route("/config", _config, methods=["GET"])
    router.add_api_route("/tenants", _tenants, methods=["GET"])
    router.add_api_route("/boundary", _boundary, methods=["GET"])
    router.add_api_route("/events", _events, methods=["GET"])
    app.include_router(router)
    static = Path(str(resources.files("context_broker") / "_control_room"))
    app.mount(_mount_path(settings), StaticFiles(directory=static, html=True), "control-room")


def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


async def _config(request: Request) -> Response:
    settings = _deps(request).settings
    return json_response(
        {
            "profile": "regional" if settings.auth_required else "dev",
            "apiPath": "/ngsi-ld/v1",
            "tileUrl": settings.control_room_tile_url,
            "resyncS": settings.control_room_resync_s,
        }
    )


async def _tenants(request: Request) -> Response:
    deps = _deps(request)
    if deps.settings.auth_required:
        raise Forbidden("the tenant list is for the dev profile; sign in with a key")
    entries = await deps.broker.store.directory.entries()
    return json_response(sorted(entry.name for entry in entries if entry.status == "active"))


async def _boundary(request: Request) -> Response:
    """The tenant's boundary: the one it was onboarded with, else that of the comune its
    name is the slug of (the dev profile's tenants are not onboarded)."""
    tenant = tenant_of(request)
    registry: TenantRegistry = request.app.state.tenant_registry
    record = None if tenant is None else await registry.get_tenant(tenant)
    geometry = None if record is None else record.boundary
    name = None if record is None else record.name
    if geometry is None and tenant is not None:
        try:
            comune = load_comuni().by_slug(tenant)
        except KeyError:
            comune = None
        if comune is not None:
            geometry, name = comune.boundary_geojson(), comune.name
    if geometry is None:
        raise ResourceNotFound(f"the tenant {tenant or '(default)'} has no comune boundary")
    feature = {"type": "Feature", "geometry": geometry, "properties": {"name": name}}
    return json_response(feature, media_type="application/geo+json")


async def _events(request: Request) -> Response:
    tenant = tenant_of(request)
    feed: LiveFeed = request.app.state.live_feed
    return StreamingResponse(
        _stream(feed, tenant),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(feed: LiveFeed, tenant: str | None) -> AsyncIterator[bytes]:
    loop_time = asyncio.get_running_loop().time
    ends_at = loop_time() + STREAM_LIFETIME_S
    with feed.watching(tenant) as viewer:
        yield b"retry: 1000\nevent: ready\ndata: {}\n\n"
        while loop_time() < ends_at:
            touched = await viewer.next_changes(KEEPALIVE_S)
            if not touched:
                yield b": keepalive\n\n"
                continue
            body = {
                "changes": [{"id": t.entity_id, "deleted": t.deleted} for t in touched],
                "lost": viewer.lost_changes,
            }
            viewer.lost_changes = False
            yield b"event: changes\ndata: " + orjson.dumps(body) + b"\n\n"
