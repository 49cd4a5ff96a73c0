"""The NGSI-LD API as /openapi.json, /docs and /redoc show it.

Each route describes its parameters, headers, body and answers here, through its
`openapi_extra`: the description feeds the schema only, so requests keep skipping FastAPI's
parameter solving and the handlers keep the spec's own parsing and errors. The docs pages
and their assets are served by the broker itself, so they work without internet.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from context_broker._errors import (
    AlreadyExists,
    BadRequestData,
    InternalError,
    InvalidRequest,
    LdContextNotAvailable,
    NgsiLdError,
    NonexistentTenant,
    NotAcceptable,
    PayloadTooLarge,
    ResourceNotFound,
    TenantBusy,
    TooComplexQuery,
    TooManyResults,
    UnsupportedMediaType,
)
from context_broker._http._negotiation import CONTEXT_REL, GEO_JSON, JSON, JSON_LD, MERGE_PATCH
from context_broker._http._params import REPRESENTATIONS
from context_broker._jsonld import NGSI_LD_CORE_CONTEXT_URL
from context_broker._settings import BrokerSettings

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
PROBLEM = "#/components/schemas/ProblemDetails"
KEY_SCHEME = "apiKey"

_DEFAULT_LIMIT = BrokerSettings.model_fields["query_default_limit"].default
_EXAMPLE_ID = "urn:ngsi-ld:WeatherObserved:prato-centro"


def _string(example: str | None = None, **schema: Any) -> dict[str, Any]:
    return {"type": "string", **schema} | ({"examples": [example]} if example else {})


_BOOLEAN = {"type": "boolean", "default": False}

# The query parameters the handlers read (see _params.py, _query.py), by name: one entry
# each, reused by every route that reads it.
QUERY_PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "id": ("Comma-separated entity ids (URIs).", _string(_EXAMPLE_ID)),
    "idPattern": (
        "Regular expression (RE2 syntax) the entity id matches.",
        _string("urn:ngsi-ld:WeatherObserved:prato-.*"),
    ),
    "type": (
        "Type query (clause 4.17): `A,B` or `A|B` either, `A;B` both, parentheses group.",
        _string("WeatherObserved"),
    ),
    "attrs": (
        "Comma-separated attribute names: only these are shown (and, in a query, an entity "
        "must have at least one).",
        _string("temperature,relativeHumidity"),
    ),
    "pick": (
        "Comma-separated members to show, `id` and `type` included; excludes `attrs`.",
        _string("id,temperature"),
    ),
    "omit": ("Comma-separated members to leave out.", _string("location")),
    "q": ("Query language (clause 4.9).", _string("temperature>20;relativeHumidity<80")),
    "scopeQ": ("Scope query (clause 4.19).", _string("/Toscana/Prato/#")),
    "georel": (
        "Geo-query relation (clause 4.10): near (with maxDistance or minDistance), within, "
        "contains, intersects, overlaps, disjoint, equals.",
        _string("near;maxDistance==2000"),
    ),
    "geometry": ("Geo-query geometry type.", _string("Point")),
    "coordinates": ("Geo-query coordinates, as in GeoJSON.", _string("[11.0963,43.8808]")),
    "geoproperty": (
        "The GeoProperty a geo-query tests.",
        _string("location", default="location"),
    ),
    "local": ("Answer from this broker only (there is no federation).", _BOOLEAN),
    "format": ("Representation.", _string(enum=list(REPRESENTATIONS))),
    "lang": (
        "Preferred languages of LanguageProperties, as in Accept-Language.",
        _string("it,en;q=0.5"),
    ),
    "limit": (
        f"Page size (default {_DEFAULT_LIMIT}; more than CONTESTO_QUERY_MAX_LIMIT answers 403 "
        "TooManyResults); 0 with count=true counts only.",
        {"type": "integer", "minimum": 0, "default": _DEFAULT_LIMIT},
    ),
    "offset": (
        "Entities to skip before the page.",
        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0},
    ),
    "count": ("Total matches in the NGSILD-Results-Count response header.", _BOOLEAN),
    "geometryProperty": (
        "The GeoProperty of a GeoJSON representation (Accept: application/geo+json).",
        _string("location", default="location"),
    ),
    "orderBy": (
        "Comma-separated `path` or `path;asc|desc`: id, type, createdAt, modifiedAt or an "
        "attribute path as in q; `geoproperty;dist-asc|dist-desc` orders by distance from "
        "orderFrom (clause 4.23).",
        _string("temperature;desc,id"),
    ),
    "orderFrom": (
        "Coordinates of the reference geometry of an orderBy by distance, as in GeoJSON.",
        _string("[11.0963,43.8808]"),
    ),
    "orderGeometry": (
        "GeoJSON type of the orderFrom reference geometry.",
        _string("Point", default="Point"),
    ),
    "expandValues": (
        "Comma-separated attribute names whose values q compares as IRIs: each string value "
        "in q is expanded with the @context first (clause 4.9).",
        _string("category"),
    ),
    "collation": ("Language tag whose rules order text values.", _string("it")),
    "join": (
        "Linked Entity Retrieval (clause 4.5.23): `inline` puts each Relationship's target "
        "entity inside it, `flat` lists the linked entities after the entities.",
        _string(enum=["inline", "flat", "@none"]),
    ),
    "containedBy": (
        "Linked Entity Retrieval (clause 4.5.23): the comma-separated ids of the entities "
        "already traversed, which the answer does not join again.",
        _string("urn:ngsi-ld:Building:b1"),
    ),
    "joinLevel": (
        "How many Relationships away linked entities are fetched (with join); at most "
        "CONTESTO_JOIN_MAX_LEVEL.",
        {"type": "integer", "minimum": 1, "default": 1},
    ),
    "drop": (
        "Purge Entities: attributes to delete from the selected entities, which stay.",
        _string("temperature"),
    ),
    "keep": (
        "Purge Entities: the only attributes the selected entities keep; they stay.",
        _string("location"),
    ),
    "datasetId": (
        "Comma-separated datasetIds (`@none`: the default instance): a read shows only these "
        "attribute instances; Delete Attribute deletes only the instance with this datasetId.",
        _string("urn:ngsi-ld:Dataset:raw"),
    ),
    "csf": ("Context source filter (clause 4.9): its syntax is checked.", _string("p==1")),
    "deleteAll": ("Deletes every instance of the attribute.", _BOOLEAN),
    "details": ("Answer the detailed form.", _BOOLEAN),
    "kind": ("Only the @contexts of this kind.", _string(enum=["Hosted", "Cached"])),
    "timerel": (
        "Temporal query (clause 4.11): instances whose timeproperty is before timeAt, after "
        "it, or between timeAt (included) and endTimeAt (excluded).",
        _string(enum=["before", "after", "between"]),
    ),
    "timeAt": ("Temporal query: the time timerel compares to.", _string("2026-01-31T00:00:00Z")),
    "endTimeAt": ("Temporal query: the end of timerel=between.", _string("2026-02-01T00:00:00Z")),
    "timeproperty": (
        "The time of an instance a temporal query compares.",
        _string(enum=["observedAt", "createdAt", "modifiedAt"], default="observedAt"),
    ),
    "lastN": (
        "Only the N most recent instances of each attribute (with aggregatedValues: the N "
        "most recent periods).",
        {"type": "integer", "minimum": 1},
    ),
    "aggrMethods": (
        "With options=aggregatedValues: comma-separated totalCount, distinctCount, sum, avg, "
        "min, max, stddev, sumsq.",
        _string("avg,max"),
    ),
    "aggrPeriodDuration": (
        "With options=aggregatedValues: the length of each period, an ISO 8601 duration in "
        "weeks, days, hours, minutes or seconds; PT0S (default) is one period.",
        _string("PT1H", default="PT0S"),
    ),
    "reload": ("Fetch a Cached @context again instead of deleting it.", _BOOLEAN),
}

HEADER_PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "NGSILD-Tenant": (
        "Tenant: 1-48 letters, digits, `-` or `_`, case-insensitive; none is the default tenant.",
        _string("prato", maxLength=48),
    ),
    "Link": (
        "The @context of an application/json request, as a JSON-LD context link.",
        _string(f'<{NGSI_LD_CORE_CONTEXT_URL}>; rel="{CONTEXT_REL}"; type="application/ld+json"'),
    ),
}

# Path parameters are declared by the handlers' signatures; these texts describe them.
PATH_PARAMETERS: dict[str, str] = {
    "entity_id": "The entity's id (a URI).",
    "attr": "The attribute's name (a term of the @context, or a URI).",
    "type_name": "The entity type's name (a term of the @context, or a URI).",
    "attr_name": "The attribute's name (a term of the @context, or a URI).",
    "context_id": "A hosted @context's local id, or a cached @context's URL.",
    "subscription_id": "The subscription's id (a URI).",
}

_QUERY_SELECTION = (
    *("id", "idPattern", "type", "attrs", "pick", "omit", "q", "scopeQ"),
    *("georel", "geometry", "coordinates", "geoproperty", "local", "csf", "expandValues"),
)
QUERY_ANSWER = (
    *("options", "format", "lang", "limit", "offset", "count", "datasetId"),
    *("geometryProperty", "orderBy", "collation", "join", "joinLevel", "containedBy"),
    *("orderFrom", "orderGeometry"),
)
QUERY_ENTITIES = (*_QUERY_SELECTION, *QUERY_ANSWER)
RETRIEVE_ENTITY = (
    *("type", "attrs", "pick", "omit", "datasetId", "options", "format", "lang"),
    "geometryProperty",
    *("join", "joinLevel", "containedBy"),
)


def _parameter(
    name: str, location: str, description: str, schema: dict[str, Any]
) -> dict[str, Any]:
    """A parameter object; its example goes in the text, so that trying a route out in
    /docs sends only the parameters the user fills in."""
    shown = {key: value for key, value in schema.items() if key != "examples"}
    if "examples" in schema:
        description = f"{description} Example: `{schema['examples'][0]}`"
    return {"name": name, "in": location, "description": description, "schema": shown}


def _options(extra: tuple[str, ...]) -> dict[str, Any]:
    values = [*REPRESENTATIONS, "sysAttrs", *extra]
    return _parameter(
        "options",
        "query",
        f"Comma-separated options: {', '.join(values)}.",
        _string(extra[0] if extra else "keyValues", pattern=rf"^(({'|'.join(values)}),?)+$"),
    )


# --- bodies --------------------------------------------------------------------------------

_ENTITY_EXAMPLE: dict[str, Any] = {
    "id": _EXAMPLE_ID,
    "type": "WeatherObserved",
    "temperature": {
        "type": "Property",
        "value": 21.5,
        "unitCode": "CEL",
        "observedAt": "2026-01-31T12:00:00Z",
    },
    "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [11.0963, 43.8808]},
    },
}
_FRAGMENT_EXAMPLE: dict[str, Any] = {
    "temperature": {"type": "Property", "value": 22.1, "observedAt": "2026-01-31T12:10:00Z"}
}
_ATTRIBUTE_EXAMPLE: dict[str, Any] = {"type": "Property", "value": 22.1, "unitCode": "CEL"}
_QUERY_EXAMPLE: dict[str, Any] = {
    "type": "Query",
    "entities": [{"type": "WeatherObserved"}],
    "q": "temperature>20",
    "attrs": ["temperature"],
}
_CONTEXT_EXAMPLE: dict[str, Any] = {
    "@context": {"temperature": "https://smartdatamodels.org/dataModel.Weather/temperature"}
}

_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_ENTITY: dict[str, Any] = {**_OBJECT, "required": ["id", "type"]}


@dataclass(slots=True, frozen=True)
class Body:
    """A request body: its schema, an example and its media types."""

    description: str
    schema: dict[str, Any]
    example: Any
    with_context: bool = True
    merge_patch: bool = False

    def describe(self) -> dict[str, Any]:
        """The requestBody object: application/json and application/ld+json (with @context)."""
        plain = {"schema": self.schema, "example": self.example}
        linked = {"schema": self.schema, "example": self._with_context(self.example)}
        content = {JSON: plain, JSON_LD: linked}
        if self.merge_patch:
            content[MERGE_PATCH] = plain
        return {"description": self.description, "required": True, "content": content}

    def _with_context(self, example: Any) -> Any:
        if not self.with_context:
            return example
        if isinstance(example, list):
            return [self._with_context(item) for item in example]
        return {**example, "@context": NGSI_LD_CORE_CONTEXT_URL}


ENTITY = Body("An entity, normalized or concise.", _ENTITY, _ENTITY_EXAMPLE)
FRAGMENT = Body("Attributes, normalized or concise.", _OBJECT, _FRAGMENT_EXAMPLE)
MERGE = Body(
    "Attributes to merge; `urn:ngsi-ld:null` deletes.",
    _OBJECT,
    _FRAGMENT_EXAMPLE,
    merge_patch=True,
)
ATTRIBUTE = Body("One attribute, normalized or concise.", _OBJECT, _ATTRIBUTE_EXAMPLE)
ATTRIBUTE_PATCH = Body(
    "Members of one attribute to change, normalized or concise.",
    _OBJECT,
    _ATTRIBUTE_EXAMPLE,
    merge_patch=True,
)
ENTITIES = Body(
    "A non-empty array of entities, each with its own @context in application/ld+json.",
    {"type": "array", "minItems": 1, "items": _ENTITY},
    [_ENTITY_EXAMPLE],
)
ENTITY_IDS = Body(
    "A non-empty array of entity ids.",
    {"type": "array", "minItems": 1, "items": {"type": "string", "format": "uri"}},
    [_EXAMPLE_ID],
    with_context=False,
)
QUERY_BODY = Body(
    "A Query (clause 5.2.23): entities, q, attrs, pick, omit, geoQ, scopeQ, lang, "
    "expandValues, ordering (clause 5.2.43).",
    {**_OBJECT, "required": ["type"]},
    _QUERY_EXAMPLE,
)
SUBSCRIPTION = Body(
    "A Subscription (clause 5.2.12): entities and/or watchedAttributes, notificationTrigger, "
    "q, geoQ, scopeQ, isActive, expiresAt, throttling, notification with its endpoint.",
    {**_OBJECT, "required": ["type", "notification"]},
    {
        "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}],
        "watchedAttributes": ["no2"],
        "q": "no2>40",
        "notification": {
            "attributes": ["no2"],
            "format": "keyValues",
            "endpoint": {"uri": "https://alerts.example.org/no2", "accept": "application/json"},
        },
    },
)
SUBSCRIPTION_FRAGMENT = Body(
    "Members of a Subscription to replace (those of notification one by one); null removes "
    "an optional member.",
    _OBJECT,
    {"isActive": False},
)
CONTEXT = Body(
    "A JSON-LD @context document to host.",
    {**_OBJECT, "required": ["@context"]},
    _CONTEXT_EXAMPLE,
    with_context=False,
)

# --- answers ---------------------------------------------------------------------------------

_ALWAYS: tuple[type[NgsiLdError], ...] = (InvalidRequest, BadRequestData, InternalError)
READ = (NonexistentTenant, NotAcceptable, LdContextNotAvailable, TenantBusy)
QUERY_ERRORS = (*READ, TooManyResults, TooComplexQuery)
FIND = (*READ, ResourceNotFound)
WRITE = (UnsupportedMediaType, PayloadTooLarge, LdContextNotAvailable)
WRITE_ONE = (*WRITE, ResourceNotFound)
CREATE = (*WRITE, AlreadyExists)
REMOVE = (NonexistentTenant, ResourceNotFound)

_SUCCESS = {
    200: "OK",
    201: "Created",
    204: "Done",
    207: "Partly done: the body tells what failed (ProblemDetails per item)",
}


def _error_answers(errors: tuple[type[NgsiLdError], ...]) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for error in (*_ALWAYS, *errors):
        names = by_status.setdefault(error.status, [])
        if error.type_name not in names:
            names.append(error.type_name)
    problem = {"schema": {"$ref": PROBLEM}}
    return {
        str(status): {
            "description": " or ".join(names),
            "content": {"application/json": problem},
        }
        for status, names in sorted(by_status.items())
    }


def operation(
    summary: str,
    *,
    query: tuple[str, ...] = (),
    options: tuple[str, ...] | None = None,
    link: bool = True,
    body: Body | None = None,
    errors: tuple[type[NgsiLdError], ...] = (),
    answers: dict[int, str] | None = None,
    representations: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A route's `openapi_extra`: its query and header parameters, body and answers.

    `options` lists the route's own values of the `options` parameter besides the
    representations (None: the route reads no `options`); `representations` the media
    types its 200 answer may take (the Accept header chooses).
    """
    if options is not None and "options" not in query:
        query = (*query, "options")
    parameters = [
        _options(options or ())
        if name == "options"
        else _parameter(name, "query", *QUERY_PARAMETERS[name])
        for name in query
    ]
    headers = ("NGSILD-Tenant", "Link") if link else ("NGSILD-Tenant",)
    parameters += [_parameter(name, "header", *HEADER_PARAMETERS[name]) for name in headers]
    responses: dict[str, Any] = {
        str(status): {"description": text} for status, text in (answers or {}).items()
    }
    if representations:
        example = {"schema": {"type": ["object", "array"]}}
        responses.setdefault("200", {})["content"] = dict.fromkeys(representations, example)
    responses |= _error_answers(errors)
    extra: dict[str, Any] = {"summary": summary, "parameters": parameters, "responses": responses}
    if body is not None:
        extra["requestBody"] = body.describe()
    return extra


GEO_MEDIA_TYPES = (JSON, JSON_LD, GEO_JSON)
MEDIA_TYPES = (JSON, JSON_LD)


def answer(status: int, text: str | None = None) -> dict[int, str]:
    """The success answer of a route, with its standard description unless given."""
    return {status: text or _SUCCESS[status]}


def partly(status: int) -> dict[int, str]:
    """A success answer, or 207 when some items or attributes failed."""
    return answer(status) | answer(207)


CREATED = answer(201, "Created: the Location header names the new entity")


# --- the schema and the pages ------------------------------------------------------------------

_PROBLEM_DETAILS = {
    "type": "object",
    "description": "An NGSI-LD error (clause 5.5.2, IETF RFC 7807).",
    "required": ["type", "title"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "example": BadRequestData("q: unexpected ')' at position 14").problem_details(),
}
_KEY = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key minted by `contesto tenants keys` (regional profile): "
    "`Authorization: Bearer ctk_<tenant>_<secret>`.",
}
_GUARDED = ("/ngsi-ld/", "/admin/")
API_PREFIX = "/ngsi-ld/"
_DEFAULT = "Successful Response"


def install_api_description(app: FastAPI, *, key_required: bool) -> None:
    """Complete the app's OpenAPI and serve /docs and /redoc with the stack's own assets.

    The app is made with docs_url=None and redoc_url=None; `key_required` puts the API-key
    scheme on every guarded operation.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _complete(generate(), key_required=key_required)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def _complete(schema: dict[str, Any], *, key_required: bool) -> None:
    """Add ProblemDetails and the key scheme; drop FastAPI's 422 answers (this API gives
    them as 400 BadRequestData) and, on NGSI-LD operations, its default 200."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ProblemDetails"] = _PROBLEM_DETAILS
    components["securitySchemes"] = {KEY_SCHEME: _KEY}
    for path, operations in schema.get("paths", {}).items():
        for details in operations.values():
            responses = details.get("responses", {})
            if path.startswith(API_PREFIX):
                # Each NGSI-LD operation lists its own answers: drop FastAPI's default one.
                for status in [s for s, r in responses.items() if r["description"] == _DEFAULT]:
                    del responses[status]
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                del responses["422"]
                responses.setdefault("400", _error_answers(())["400"])
            for parameter in details.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in PATH_PARAMETERS:
                    parameter["description"] = PATH_PARAMETERS[parameter["name"]]
            if key_required and path.startswith(_GUARDED):
                details["security"] = [{KEY_SCHEME: []}]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
