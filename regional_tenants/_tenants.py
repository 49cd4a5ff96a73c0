"""The tenant registry's values: one tenant per comune, one per utility, and `toscana`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from ._comuni import Comune
from ._slugs import valid_slug

TenantKind = Literal["comune", "utility", "region"]
TenantStatus = Literal["active", "suspended"]
# How the NGSI-LD API checks writes of the types the tenant's models cover (docs/regional.md).
ApiValidation = Literal["off", "warn", "enforce"]
REGION_TENANT = "toscana"

# What a comune's tenant accepts from the start: the toscana profiles comuni use, and models.
COMUNE_MODELS: tuple[str, ...] = (
    "toscana/AirQualityObserved",
    "toscana/ParkingSpot",
    "WeatherObserved",
    "TrafficFlowObserved",
    "WasteContainer",
    "Streetlight",
)


@dataclass(frozen=True, slots=True)
class Contact:
    """Who to call about a tenant (a named office or person and an e-mail address)."""

    name: str
    email: str

    def __post_init__(self) -> None:
        if not self.name or "@" not in self.email.strip("@"):
            raise ValueError(f"a contact needs a name and an e-mail address, not {self!r}")


@dataclass(frozen=True, slots=True)
class Quotas:
    """Limits on a tenant: stored entities and incoming messages per second."""

    max_entities: int = 100_000
    max_messages_per_s: int = 100

    def __post_init__(self) -> None:
        if self.max_entities < 1 or self.max_messages_per_s < 1:
            raise ValueError(f"quotas must be positive, not {self!r}")


@dataclass(frozen=True, slots=True)
class Tenant:
    """One tenant: a comune (with ISTAT code and boundary), a utility, or the region."""

    slug: str
    kind: TenantKind
    name: str
    created_at: datetime
    istat_code: str | None = None
    boundary: Mapping[str, Any] | None = field(default=None, hash=False, repr=False)
    models: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    quotas: Quotas = Quotas()
    status: TenantStatus = "active"
    api_validation: ApiValidation = "off"

    def __post_init__(self) -> None:
        problems = []
        if not valid_slug(self.slug):
            problems.append(f"slug {self.slug!r} is not a valid tenant slug")
        if self.kind not in get_args(TenantKind):
            problems.append(f"kind {self.kind!r} is not one of {get_args(TenantKind)}")
        if self.status not in get_args(TenantStatus):
            problems.append(f"status {self.status!r} is not one of {get_args(TenantStatus)}")
        if self.api_validation not in get_args(ApiValidation):
            modes = get_args(ApiValidation)
            problems.append(f"apiValidation {self.api_validation!r} is not one of {modes}")
        if (self.kind == "comune") != (self.istat_code is not None):
            problems.append("a comune, and only a comune, has an ISTAT code")
        if self.boundary is not None and self.boundary.get("type") != "MultiPolygon":
            problems.append("the boundary must be a GeoJSON MultiPolygon")
        if self.created_at.tzinfo is None:
            problems.append("created_at must carry a time zone")
        if problems:
            raise ValueError(f"tenant {self.slug!r}: " + "; ".join(problems))

    @property
    def active(self) -> bool:
        """False while the tenant is suspended (its keys are refused, its data kept)."""
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict (created_at as an ISO 8601 UTC string)."""
        return {
            "slug": self.slug,
            "kind": self.kind,
            "name": self.name,
            "istat_code": self.istat_code,
            "boundary": self.boundary,
            "models": list(self.models),
            "contacts": [{"name": c.name, "email": c.email} for c in self.contacts],
            "quotas": {
                "max_entities": self.quotas.max_entities,
                "max_messages_per_s": self.quotas.max_messages_per_s,
            },
            "status": self.status,
            "api_validation": self.api_validation,
            "created_at": _iso(self.created_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tenant:
        """The inverse of `to_dict`; raises ValueError on a malformed record."""
        try:
            quotas = data.get("quotas") or {}
            return cls(
                slug=data["slug"],
                kind=cast(TenantKind, data["kind"]),
                name=data["name"],
                created_at=_parse_time(data["created_at"]),
                istat_code=data.get("istat_code"),
                boundary=data.get("boundary"),
                models=tuple(data.get("models", ())),
                contacts=tuple(Contact(c["name"], c["email"]) for c in data.get("contacts", ())),
                quotas=Quotas(**quotas),
                status=cast(TenantStatus, data.get("status", "active")),
                api_validation=cast(ApiValidation, data.get("api_validation", "off")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a tenant record: {exc!r}") from None


def tenant_for_comune(
    comune: Comune,
    *,
    contacts: tuple[Contact, ...] = (),
    created_at: datetime | None = None,
) -> Tenant:
    """A new, active tenant for a comune, with its boundary and the comuni's default models."""
    return Tenant(
        slug=comune.slug,
        kind="comune",
        name=comune.name,
        created_at=created_at or datetime.now(UTC),
        istat_code=comune.istat_code,
        boundary=comune.boundary_geojson(),
        models=COMUNE_MODELS,
        contacts=contacts,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: object) -> datetime:
    if not isinstance(text, str):
        raise TypeError(f"created_at must be an ISO 8601 string, not {text!r}")
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
