"""Entity ordering (clause 4.23) of Query Entities: the URL's orderBy, collation, orderFrom
and orderGeometry, or a Query's `ordering` member (OrderingParams, clause 5.2.43), read
into the sort keys and collation of the query."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from context_broker._errors import BadRequestData
from context_broker._http._params import parse_order_by
from context_broker._query._geo import parse_distance_from
from context_broker._service import SortKey

_ORDERING_MEMBERS = frozenset({"orderBy", "collation", "geometry", "coordinates"})


@dataclass(slots=True, frozen=True)
class Ordering:
    """The ordering members as sent; `geometry` and `coordinates` are the reference of an
    order by distance (`dist-asc`, `dist-desc`)."""

    order_by: str | None = None
    collation: str | None = None
    geometry: object = None
    coordinates: object = None

    @property
    def given(self) -> bool:
        members = (self.order_by, self.collation, self.geometry, self.coordinates)
        return any(member is not None for member in members)

    def keys(self, expand: Callable[[str], str]) -> tuple[SortKey, ...]:
        """The sort keys; a reference geometry is only for an order by distance."""
        reference = None
        if self.coordinates is not None or self.geometry is not None:
            reference = parse_distance_from(self.geometry, self.coordinates)
        if self.order_by is None:
            if reference is not None:
                raise BadRequestData("orderFrom and orderGeometry need an orderBy by distance")
            return ()
        keys = parse_order_by(self.order_by, expand, reference)
        if any(key.distance_from for key in keys) and self.collation is not None:
            raise BadRequestData("collation orders text values; an order by distance has none")
        return keys

    def collation_tag(self) -> str | None:
        """collation: the language tag (BCP 47) whose rules order text values."""
        raw = self.collation
        if raw is None:
            return None
        tag = raw.strip()
        if not tag or not all(part.isalnum() and len(part) <= 8 for part in tag.split("-")):
            raise BadRequestData(
                f"collation must be a language tag such as it or de-AT; got {raw!r}"
            )
        return tag.replace("-", "_")


def url_ordering(params: Mapping[str, str]) -> Ordering:
    """The ordering of a request's URL parameters."""
    return Ordering(
        order_by=params.get("orderBy"),
        collation=params.get("collation"),
        geometry=params.get("orderGeometry"),
        coordinates=params.get("orderFrom"),
    )


def body_ordering(raw: object, url: Ordering) -> Ordering:
    """A Query's `ordering` member (clause 5.2.43), else the URL's ordering; not both."""
    if raw is None:
        return url
    if url.given:
        raise BadRequestData("a Query with an ordering member takes no ordering URL parameters")
    if not isinstance(raw, dict):
        raise BadRequestData("ordering must be an OrderingParams object (clause 5.2.43)")
    unknown = set(raw) - _ORDERING_MEMBERS
    if unknown:
        raise BadRequestData(f"unknown members of the ordering: {', '.join(sorted(unknown))}")
    order_by = raw.get("orderBy")
    if isinstance(order_by, list) and order_by and all(isinstance(i, str) for i in order_by):
        order_by = ",".join(order_by)
    if not isinstance(order_by, str):
        raise BadRequestData("ordering.orderBy must be an array of orderBy terms (clause 4.23)")
    collation = raw.get("collation")
    if collation is not None and not isinstance(collation, str):
        raise BadRequestData("ordering.collation must be a string")
    coordinates = raw.get("coordinates")
    if coordinates is not None and not isinstance(coordinates, list):
        raise BadRequestData("ordering.coordinates must be a JSON array (RFC 7946)")
    return Ordering(order_by, collation, raw.get("geometry"), coordinates)
