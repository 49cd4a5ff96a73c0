"""Query-string parameters shared by the NGSI-LD endpoints (clause 6.3 and 5.x)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from context_broker._attributes import Format, RenderOptions, parse_lang
from context_broker._errors import BadRequestData
from context_broker._jsonld import TermMap
from context_broker._names import check_name

_FORMATS = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}


def options_of(request: Request, allowed: Iterable[str] = ()) -> set[str]:
    """The `options` list; representation options are always allowed."""
    raw = request.query_params.get("options")
    if raw is None:
        return set()
    options = {item.strip() for item in raw.split(",") if item.strip()}
    unknown = options - set(_FORMATS) - {"sysAttrs"} - set(allowed)
    if unknown:
        raise BadRequestData(f"unknown options: {', '.join(sorted(unknown))}")
    return options


def render_options(request: Request, options: set[str]) -> RenderOptions:
    """Representation (options/format), sysAttrs and lang of a retrieval or query."""
    formats = {_FORMATS[o] for o in options if o in _FORMATS}
    explicit = request.query_params.get("format")
    if explicit is not None:
        if explicit not in _FORMATS:
            raise BadRequestData(
                "format must be one of normalized, concise, keyValues, simplified; "
                f"got {explicit!r}"
            )
        formats.add(_FORMATS[explicit])
    if len(formats) > 1:
        raise BadRequestData(f"conflicting representations requested: {', '.join(sorted(formats))}")
    chosen: Format = formats.pop() if formats else "normalized"  # type: ignore[assignment]
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
