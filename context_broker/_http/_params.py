"""Query-string parameters shared by the NGSI-LD endpoints (clause 6.3 and 5.x)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from context_broker._attributes import Format, RenderOptions, parse_lang
from context_broker._datasets import parse_dataset_ids
from context_broker._errors import BadRequestData, InvalidRequest, TooManyResults
from context_broker._jsonld import TermMap
from context_broker._names import check_name, check_uri, encode_field
from context_broker._query import Exists, parse_q
from context_broker._query._geo import DistanceFrom
from context_broker._query._q import syntax_error
from context_broker._query._types import TypeSelection
from context_broker._service import ENTITY_SORT_FIELDS, SortKey, attribute_sort_field
from context_broker._settings import BrokerSettings

_FORMATS = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}
REPRESENTATIONS = tuple(_FORMATS)


def options_of(request: Request, allowed: Iterable[str] = ()) -> set[str]:
    """The `options` list; representation options are always allowed."""
    raw = request.query_params.get("options")
    if raw is None:
        return set()
    options = {item.strip() for item in raw.split(",") if item.strip()}
    unknown = options - set(_FORMATS) - {"sysAttrs"} - set(allowed)
    if unknown:
        raise InvalidRequest(f"unknown options: {', '.join(sorted(unknown))}")
    return options


def render_options(request: Request, options: set[str], lang: str | None = None) -> RenderOptions:
    """Representation (options/format), sysAttrs and lang of a retrieval or query; `lang`
    (a Query body's) stands in for the URL's."""
    formats = {_FORMATS[o] for o in options if o in _FORMATS}
    explicit = request.query_params.get("format")
    if explicit is not None:
        if explicit not in _FORMATS:
            raise InvalidRequest(
                "format must be one of normalized, concise, keyValues, simplified; "
                f"got {explicit!r}"
            )
        # Clause 6.3.7: format takes precedence over the representation options.
        formats = {_FORMATS[explicit]}
    if len(formats) > 1:
        raise BadRequestData(f"conflicting representations requested: {', '.join(sorted(formats))}")
    chosen: Format = formats.pop() if formats else "normalized"  # type: ignore[assignment]
    if lang is None:
        lang = request.query_params.get("lang")
    return RenderOptions(
        format=chosen,
        sys_attrs="sysAttrs" in options,
        lang=parse_lang(lang) if lang is not None else None,
    )


def name_list(request: Request, key: str, terms: TermMap) -> list[str] | None:
    """A comma-separated list of attribute or type names, expanded with the request's terms."""
    raw = request.query_params.get(key)
    if raw is None:
        return None
    names = [item.strip() for item in raw.split(",") if item.strip()]
    if not names:
        raise BadRequestData(f"{key} must list at least one name")
    return [terms.expand(check_name(name, key)) for name in names]


def dataset_ids_of(request: Request) -> frozenset[str] | None:
    """The `datasetId` selection of attribute instances (clause 4.5.5), None when absent."""
    params = request.query_params
    # `in` first: a missing key costs `get` a raised KeyError, and reads by id are hot.
    return parse_dataset_ids(params["datasetId"]) if "datasetId" in params else None


def int_param(request: Request, key: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestData(f"{key} must be an integer; got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise BadRequestData(f"{key} must be between {minimum} and {maximum}; got {value}")
    return value


def bool_param(request: Request, key: str) -> bool:
    raw = request.query_params.get(key)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise BadRequestData(f"{key} must be true or false; got {raw!r}")
    return raw == "true"


def page_params(request: Request, settings: BrokerSettings) -> tuple[int, int, bool]:
    """limit, offset and count of a query (clause 5.5.9, 6.3.10, 6.3.13)."""
    raw = request.query_params.get("limit")
    limit = settings.query_default_limit
    if raw is not None:
        limit = int_param(request, "limit", limit, minimum=0, maximum=2**63 - 1)
        if limit > settings.query_max_limit:
            raise TooManyResults(
                f"limit {limit} is more than the {settings.query_max_limit} entities this broker "
                "returns at once; page with offset"
            )
    offset = int_param(request, "offset", 0, minimum=0, maximum=2**31 - 1)
    count = bool_param(request, "count")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return limit, offset, count


def entity_ids(raw: str, what: str = "id") -> tuple[str, ...]:
    """A comma-separated list of entity ids."""
    ids = [item.strip() for item in raw.split(",") if item.strip()]
    if not ids:
        raise BadRequestData(f"{what} must list at least one entity id")
    return tuple(dict.fromkeys(check_uri(item, what) for item in ids))


def parse_type_selection(text: str, expand: Callable[[str], str]) -> TypeSelection:
    """A type query (clause 4.17): `A,B` or `A|B` either, `A;B` both, parentheses group."""
    return _TypeParser(text, expand).parse()


class _TypeParser:
    def __init__(self, text: str, expand: Callable[[str], str]) -> None:
        self.text = text
        self.expand = expand
        self.pos = 0
        self.depth = 0

    def parse(self) -> TypeSelection:
        selection = self._or()
        if self.pos < len(self.text):
            raise self._error(f"unexpected {self.text[self.pos]!r}")
        return selection

    def _error(self, message: str) -> BadRequestData:
        return syntax_error("type", message, self.text, self.pos)

    def _or(self) -> TypeSelection:
        alternatives = list(self._and())
        while self.pos < len(self.text) and self.text[self.pos] in ",|":
            self.pos += 1
            alternatives.extend(self._and())
        return _bounded(tuple(dict.fromkeys(alternatives)), self)

    def _and(self) -> TypeSelection:
        result: TypeSelection = self._primary()
        while self.pos < len(self.text) and self.text[self.pos] == ";":
            self.pos += 1
            right = self._primary()
            result = _bounded(
                tuple(tuple(dict.fromkeys((*left, *other))) for left in result for other in right),
                self,
            )
        return result

    def _primary(self) -> TypeSelection:
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            self.depth += 1
            if self.depth > 16:
                raise self._error("too deeply nested")
            self.pos += 1
            inner = self._or()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise self._error("expected ')'")
            self.pos += 1
            self.depth -= 1
            return inner
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",|;()":
            self.pos += 1
        name = self.text[start : self.pos].strip()
        if not name:
            raise self._error("expected a type name")
        try:
            check_name(name, "type")
        except BadRequestData:
            self.pos = start
            raise self._error(f"{name!r} is not a valid type name") from None
        return ((self.expand(name),),)


def _bounded(selection: TypeSelection, parser: _TypeParser) -> TypeSelection:
    if len(selection) > 64:
        raise parser._error("the type query has too many alternatives")
    return selection


def parse_order_by(
    text: str, expand: Callable[[str], str], reference: DistanceFrom | None = None
) -> tuple[SortKey, ...]:
    """orderBy (clause 4.23): comma-separated `path` or `path;asc|desc`; a path is id, type,
    createdAt, modifiedAt or an attribute path as in q (`attr.sub[member]`); a GeoProperty
    `name;dist-asc|dist-desc` orders by distance from `reference`."""
    keys: list[SortKey] = []
    for item in text.split(","):
        path, _, direction = item.strip().partition(";")
        path = path.strip()
        if not path:
            raise BadRequestData(f"orderBy must list attribute paths; got {text!r}")
        if direction not in ("", "asc", "desc", "dist-asc", "dist-desc"):
            raise BadRequestData(
                f"orderBy direction must be asc, desc, dist-asc or dist-desc; got {direction!r}"
            )
        if direction.startswith("dist-"):
            keys.append(_distance_key(path, direction, expand, reference))
            continue
        field = ENTITY_SORT_FIELDS.get(path)
        if field is None:
            parsed = parse_q(path) if _ORDER_PATH.fullmatch(path) else None
            if not isinstance(parsed, Exists) or parsed.negated:
                raise BadRequestData(
                    f"orderBy: {path!r} is not id, type, createdAt, modifiedAt or an "
                    "attribute path such as temperature or address[city]"
                )
            field = attribute_sort_field(parsed.path, expand)
        if any(key.field == field for key in keys):
            raise BadRequestData(f"orderBy names {path!r} twice")
        keys.append(SortKey(field, descending=direction == "desc"))
    if reference is not None and not any(key.distance_from for key in keys):
        raise BadRequestData("orderFrom and orderGeometry need an orderBy by distance")
    return tuple(keys)


def _distance_key(
    name: str, direction: str, expand: Callable[[str], str], reference: DistanceFrom | None
) -> SortKey:
    """An order by distance (clause 4.23.1): of a GeoProperty, from the reference geometry."""
    if reference is None:
        raise BadRequestData(
            f"orderBy {name};{direction} needs the reference geometry's coordinates (orderFrom)"
        )
    if name in ENTITY_SORT_FIELDS or not _ORDER_PATH.fullmatch(name) or "." in name:
        raise BadRequestData(f"orderBy: only a GeoProperty is ordered by distance; got {name!r}")
    field = "attrs." + encode_field(expand(check_name(name, "orderBy")))
    return SortKey(field, descending=direction == "dist-desc", distance_from=reference)


_ORDER_PATH = re.compile(r"[^\s!=<>~|;,()\"]+")


CORE_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})


@dataclass(slots=True, frozen=True)
class Projection:
    """Which members of each entity to show: attrs/pick/omit (clause 4.21) in expanded names.

    `attributes` None shows every attribute; `core` holds the shown members of id, type,
    scope, createdAt, modifiedAt.
    """

    attributes: frozenset[str] | None = None
    omitted: frozenset[str] = frozenset()
    core: frozenset[str] = CORE_MEMBERS

    def fetch(self, extra: str | None = None) -> tuple[str, ...] | None:
        """The attributes to read from the store (None: all)."""
        if self.attributes is None:
            return None
        return tuple({*self.attributes, *([extra] if extra else [])})

    def shown(self, doc: dict[str, Any]) -> frozenset[str] | None:
        if self.attributes is not None:
            return self.attributes - self.omitted
        if self.omitted:
            return frozenset(doc["an"]) - self.omitted
        return None

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.core == CORE_MEMBERS:
            return body
        return {k: v for k, v in body.items() if k not in CORE_MEMBERS or k in self.core}


ALL_MEMBERS = Projection()


def projection_of(
    attrs: str | None, pick: str | None, omit: str | None, terms: TermMap
) -> Projection:
    """The projection of attrs, pick and omit; pick and attrs exclude each other."""
    if pick is not None and attrs is not None:
        raise BadRequestData("pick and attrs cannot be used together; pick replaces attrs")
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    if attrs is not None:
        return Projection(attributes=frozenset(_names(attrs, "attrs", terms)))
    if pick is not None:
        names = _names(pick, "pick", terms, core=True)
        return Projection(
            attributes=frozenset(n for n in names if n not in CORE_MEMBERS),
            core=frozenset(n for n in names if n in CORE_MEMBERS),
        )
    if omit is not None:
        names = _names(omit, "omit", terms, core=True)
        return Projection(
            omitted=frozenset(n for n in names if n not in CORE_MEMBERS),
            core=CORE_MEMBERS - set(names),
        )
    return ALL_MEMBERS


def _names(raw: str, key: str, terms: TermMap, *, core: bool = False) -> list[str]:
    """The names of a projection (clause 4.21): separated by `,` or `|`, none empty; only
    pick and omit may name the entity's own members (id, type, ...)."""
    _check_braces(raw, key)
    names = [item.strip() for item in _PROJECTION_SEPARATOR.split(raw)]
    if not all(names):
        raise BadRequestData(f"{key} must list names separated by ',' or '|'; got {raw!r}")
    if any("{" in name for name in names):
        raise BadRequestData(f"{key}: projection into linked entities ({{...}}) is not supported")
    if not core and any(name in _ENTITY_MEMBERS for name in names):
        raise BadRequestData(f"{key} lists attributes; id and type are not attributes")
    return [
        name if core and name in CORE_MEMBERS else terms.expand(check_name(name, key))
        for name in names
    ]


_PROJECTION_SEPARATOR = re.compile(r"[,|]")
_ENTITY_MEMBERS = frozenset({"id", "type", "@id", "@type"})


def _check_braces(raw: str, key: str) -> None:
    depth = 0
    for char in raw:
        depth += (char == "{") - (char == "}")
        if depth < 0:
            break
    if depth != 0:
        raise BadRequestData(f"{key} has unbalanced braces: {raw!r}")
