"""NGSI-LD DateTime values: parsing of client input and the broker's output format."""

from __future__ import annotations

from datetime import UTC, datetime

from context_broker._errors import BadRequestData


def utc_now() -> datetime:
    """The current time at the store's precision (milliseconds)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_datetime(value: object, what: str) -> datetime:
    """Parse an ISO 8601 date-time; a value without offset is taken as UTC."""
    if not isinstance(value, str):
        raise BadRequestData(f"{what} must be an ISO 8601 date-time string; got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestData(
            f"{what} must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z; got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def parse_utc_datetime(value: object, what: str) -> datetime:
    """Parse a DateTime of a payload, which the spec writes in UTC with 'Z' (clause 4.6.3)."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise BadRequestData(
            f"{what} must be a UTC date-time ending in Z, such as 2026-01-31T12:00:00Z; "
            f"got {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestData(
            f"{what} must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z; got {value!r}"
        ) from None
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """Format as the spec's UTC form with milliseconds: 2026-01-31T12:00:00.000Z."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
