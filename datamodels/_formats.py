"""The JSON Schema formats the catalogue checks, identical for every validator backend.

The set is explicit so that results do not depend on which optional packages happen to
be installed. `date-time` is ISO 8601 as Python parses it (offset optional, as many
upstream examples omit it) and also accepts a `start/end` interval, which
TrafficFlowObserved uses for `dateObserved`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import re
from collections.abc import Callable

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S*$")
_UTC_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]00:?00)$", re.ASCII
)


def _is_one_datetime(value: str) -> bool:
    if len(value) < 16 or value[10] not in "Tt ":
        return False
    try:
        _dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "/" in value:
        start, _, end = value.partition("/")
        return _is_one_datetime(start) and _is_one_datetime(end)
    return _is_one_datetime(value)


def is_utc_instant(value: object) -> bool:
    """NGSI-LD temporal members (`observedAt`, ...): ISO 8601 in UTC, e.g. `...T10:00:00Z`."""
    return isinstance(value, str) and _utc_instant_text(value)


@functools.lru_cache(maxsize=1024)
def _utc_instant_text(value: str) -> bool:
    """Cached: the attributes of one measurement, and a batch of them, share instants."""
    if _UTC_INSTANT.match(value) is None:
        return False
    try:  # what `is_datetime` adds once the pattern holds: a real calendar date and time
        _dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        _dt.time.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_uri(value: object) -> bool:
    """As a format check: True for non-strings (the schema's `type` judges those)."""
    return not isinstance(value, str) or bool(_SCHEME.match(value))


def is_email(value: object) -> bool:
    return not isinstance(value, str) or "@" in value


def _ip(version: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


FORMATS: dict[str, Callable[[object], bool]] = {
    "date-time": is_datetime,
    "date": is_date,
    "time": is_time,
    "uri": is_uri,
    "email": is_email,
    "idn-email": is_email,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
}

FORMAT_HINTS: dict[str, str] = {
    "date-time": "an ISO 8601 date-time, e.g. 2024-05-01T10:00:00Z",
    "date": "an ISO 8601 date, e.g. 2024-05-01",
    "time": "an ISO 8601 time, e.g. 10:00:00",
    "uri": "a URI with a scheme, e.g. urn:ngsi-ld:Device:aq-fi-0001 or https://...",
    "email": "an e-mail address",
    "idn-email": "an e-mail address",
    "ipv4": "an IPv4 address, e.g. 192.0.2.10",
    "ipv6": "an IPv6 address, e.g. 2001:db8::1",
}
