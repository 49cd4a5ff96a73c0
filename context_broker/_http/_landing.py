"""What runs here: the landing page at `/` (HTML for a browser, JSON otherwise) and
`GET /version`. Neither needs a key, so neither names a tenant; the regional profile does
not even count them."""

from __future__ import annotations

import html
import importlib.metadata
import platform
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from starlette.routing import Mount, Route

from context_broker._http._deps import Deps
from context_broker._http._openapi import DOCS_URL
from context_broker._http._responses import json_response
from context_broker._http._version import SPEC_VERSION

__all__ = ["PRODUCT", "router"]

PRODUCT = "Contesto"
API_PATH = "/ngsi-ld/v1"
# A landing page or version probe never waits long on a store that is slow or gone.
STORE_ANSWER_S = 0.5
# Pages the landing page links to when this application serves them (other parts of the
# product add them), by the name the JSON answer gives each.
_OPTIONAL_LINKS = {
    "health": "/health",
    "liveness": "/health/live",
    "readiness": "/health/ready",
    "metrics": "/metrics",
    "controlRoom": "/control-room",
}

router = APIRouter(include_in_schema=False)


@router.get("/version")
async def version(request: Request) -> Response:
    """The product, its version, the NGSI-LD version implemented, Python, the store server."""
    return json_response(await _version(request))


@router.get("/")
async def landing(request: Request) -> Response:
    """What runs here and where to go next."""
    body = await _version(request)
    deps: Deps = request.app.state.deps
    if deps.settings.auth_required:
        body["profile"] = "regional"
        body["tenants"] = None
    else:
        body["profile"] = "dev"
        body["tenants"] = await deps.broker.store.tenant_count(STORE_ANSWER_S)
    body["links"] = _links(request.app)
    if _wants_html(request):
        return HTMLResponse(_page(body))
    return json_response(body)


async def _version(request: Request) -> dict[str, Any]:
    deps: Deps = request.app.state.deps
    return {
        "product": PRODUCT,
        "version": _package_version(),
        "ngsiLdVersion": SPEC_VERSION,
        "python": platform.python_version(),
        "storeVersion": await deps.broker.store.server_version(STORE_ANSWER_S),
    }


def _package_version() -> str:
    try:
        return importlib.metadata.version("contesto")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _links(app: FastAPI) -> dict[str, str]:
    served = {route.path for route in app.routes if isinstance(route, Route | Mount)}
    links = {"api": API_PATH, "docs": DOCS_URL, "openapi": "/openapi.json", "version": "/version"}
    links |= {name: path for name, path in _OPTIONAL_LINKS.items() if path in served}
    return links


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(body: dict[str, Any]) -> str:
    def cell(value: object) -> str:
        return html.escape("unknown" if value is None else str(value))

    tenants = "not shown in the regional profile" if body["profile"] == "regional" else None
    facts = [
        ("Version", cell(body["version"])),
        ("NGSI-LD", f"ETSI GS CIM 009 V{cell(body['ngsiLdVersion'])}"),
        ("Profile", cell(body["profile"])),
        ("Tenants", html.escape(tenants) if tenants else cell(body["tenants"])),
        ("Store server", cell(body["storeVersion"])),
        ("Python", cell(body["python"])),
    ]
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    # The API's base answers nothing by itself: it is shown, not linked.
    links = f"<li>NGSI-LD API <code>{API_PATH}</code></li>" + "".join(
        f'<li><a href="{html.escape(path)}">{html.escape(name)}</a> {html.escape(path)}</li>'
        for name, path in body["links"].items()
        if name != "api"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{PRODUCT}</title></head><body>"
        f"<h1>{PRODUCT} NGSI-LD context broker</h1>"
        f"<table>{rows}</table><h2>Links</h2><ul>{links}</ul></body></html>"
    )
