"""The 273 comuni of Toscana with their boundaries, from the package's `data/comuni.geojson`."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from ._slugs import slugify, valid_slug

DATA_FILE = "comuni.geojson"
COMUNI_COUNT = 273


@dataclass(frozen=True, slots=True)
class Comune:
    """A comune: ISTAT code (`PRO_COM_T`, e.g. "048017"), name, tenant slug, province, boundary."""

    istat_code: str
    name: str
    slug: str
    province: str
    geometry: Polygon | MultiPolygon = field(compare=False, repr=False)

    def boundary_geojson(self) -> dict[str, Any]:
        """The boundary as a GeoJSON MultiPolygon (lists, not tuples), as a tenant stores it."""
        parts = [self.geometry] if isinstance(self.geometry, Polygon) else self.geometry.geoms
        return {
            "type": "MultiPolygon",
            "coordinates": [_lists(mapping(part)["coordinates"]) for part in parts],
        }


def _lists(value: Any) -> Any:
    return [_lists(item) for item in value] if isinstance(value, list | tuple) else value


@dataclass(frozen=True, slots=True)
class Comuni:
    """All comuni in ISTAT-code order, with lookups by slug, ISTAT code and name."""

    items: tuple[Comune, ...]
    _by_slug: Mapping[str, Comune] = field(init=False, repr=False, compare=False)
    _by_istat: Mapping[str, Comune] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_slug = {comune.slug: comune for comune in self.items}
        by_istat = {comune.istat_code: comune for comune in self.items}
        if len(by_slug) != len(self.items) or len(by_istat) != len(self.items):
            raise ValueError("comune slugs and ISTAT codes must be unique")
        object.__setattr__(self, "_by_slug", by_slug)
        object.__setattr__(self, "_by_istat", by_istat)

    def __iter__(self) -> Iterator[Comune]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def by_slug(self, slug: str) -> Comune:
        """The comune with this tenant slug, e.g. "san-giuliano-terme"; KeyError otherwise."""
        found = self._by_slug.get(slug)
        if found is None:
            raise KeyError(self._unknown("slug", slug, slug))
        return found

    def by_istat(self, code: str | int) -> Comune:
        """The comune with this ISTAT code, "048017" or 48017; KeyError otherwise."""
        key = f"{code:06d}" if isinstance(code, int) else code
        found = self._by_istat.get(key)
        if found is None:
            raise KeyError(f"no comune of Toscana has the ISTAT code {code!r}")
        return found

    def by_name(self, name: str) -> Comune:
        """The comune with this name, ignoring case, accents, spaces, apostrophes and hyphens."""
        key = slugify(name)
        found = self._by_slug.get(key)
        if found is None:
            raise KeyError(self._unknown("name", name, key))
        return found

    def boundaries(self) -> dict[str, Polygon | MultiPolygon]:
        """Slug -> boundary, in ISTAT-code order (what `BoundaryIndex` indexes by default)."""
        return {comune.slug: comune.geometry for comune in self.items}

    def _unknown(self, what: str, asked: str, key: str) -> str:
        close = difflib.get_close_matches(key, self._by_slug, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"no comune of Toscana has the {what} {asked!r}{hint}"


def _comune(feature: Mapping[str, Any]) -> Comune:
    properties = feature["properties"]
    geometry = shape(feature["geometry"])
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise ValueError(f"comune {properties['PRO_COM_T']}: not a (Multi)Polygon")
    return Comune(
        istat_code=properties["PRO_COM_T"],
        name=properties["name"],
        slug=slugify(properties["name"]),
        province=properties["prov_acr"],
        geometry=geometry,
    )


@functools.cache
def load_comuni() -> Comuni:
    """The comuni shipped with the package (read once, then cached)."""
    raw = (resources.files("regional_tenants") / "data" / DATA_FILE).read_bytes()
    comuni = Comuni(tuple(_comune(feature) for feature in orjson.loads(raw)["features"]))
    invalid = [comune.slug for comune in comuni if not valid_slug(comune.slug)]
    if len(comuni) != COMUNI_COUNT or invalid:
        raise ValueError(f"{DATA_FILE}: {len(comuni)} comuni; slugs not valid: {invalid}")
    return comuni
