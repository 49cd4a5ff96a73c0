"""The comuni shipped with regional_tenants: package data, slugs, lookups, boundaries."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from shapely.geometry import MultiPolygon, shape

from regional_tenants import Comune, load_comuni, slugify, valid_slug

ATTRIBUTION = (
    "*Confini amministrativi: ISTAT, elaborazione openpolis\n"
    "(github.com/openpolis/geojson-italy), CC BY 4.0; modified (see README).*"
)
PER_PROVINCE = {
    "FI": 41, "PI": 37, "AR": 36, "SI": 35, "LU": 33,
    "GR": 28, "PT": 20, "LI": 19, "MS": 17, "PO": 7,
}  # fmt: skip


def test_boundaries_are_package_data_with_their_attribution() -> None:
    data = resources.files("regional_tenants") / "data"
    collection = json.loads((data / "comuni.geojson").read_bytes())
    readme = (data / "README.md").read_text(encoding="utf-8")
    assert len(collection["features"]) == 273
    assert ATTRIBUTION in readme
    assert "CC BY 4.0" in readme


def test_there_are_273_comuni_with_unique_valid_slugs_and_codes() -> None:
    comuni = load_comuni()
    assert len(comuni) == 273
    assert len({c.slug for c in comuni}) == 273
    assert len({c.istat_code for c in comuni}) == 273
    assert all(valid_slug(c.slug) for c in comuni)
    assert [c.istat_code for c in comuni] == sorted(c.istat_code for c in comuni)


def test_provinces_have_their_number_of_comuni() -> None:
    counts: dict[str, int] = {}
    for comune in load_comuni():
        counts[comune.province] = counts.get(comune.province, 0) + 1
    assert counts == PER_PROVINCE


@pytest.mark.parametrize(
    ("name", "slug", "code"),
    [
        ("Firenze", "firenze", "048017"),
        ("Prato", "prato", "100005"),
        ("Pisa", "pisa", "050026"),
        ("San Giuliano Terme", "san-giuliano-terme", "050031"),
        ("Castelnuovo Berardenga", "castelnuovo-berardenga", "052006"),
        ("Santa Croce sull'Arno", "santa-croce-sull-arno", "050033"),
        ("Castel San Niccolò", "castel-san-niccolo", "051010"),
        ("Castell'Azzara", "castell-azzara", "053005"),
        ("Montecatini-Terme", "montecatini-terme", "047011"),
    ],
)
def test_slugs_fold_case_accents_and_apostrophes(name: str, slug: str, code: str) -> None:
    comuni = load_comuni()
    comune = comuni.by_istat(code)
    assert (comune.name, comune.slug) == (name, slug)
    assert comuni.by_slug(slug) is comune
    assert comuni.by_name(name) is comune


@pytest.mark.parametrize(
    ("asked", "slug"),
    [
        ("prato", "prato"),
        ("PRATO", "prato"),
        ("san giuliano terme", "san-giuliano-terme"),
        ("Castel San Niccolo", "castel-san-niccolo"),
        ("CASTEL SAN NICCOLÒ", "castel-san-niccolo"),
        ("Santa Croce sull\u2019Arno", "santa-croce-sull-arno"),  # typographic apostrophe
        ("  Montecatini Terme ", "montecatini-terme"),
    ],
)
def test_names_are_looked_up_ignoring_case_and_accents(asked: str, slug: str) -> None:
    assert load_comuni().by_name(asked).slug == slug


def test_istat_codes_are_looked_up_as_text_or_number() -> None:
    assert load_comuni().by_istat(48017).name == "Firenze"
    assert load_comuni().by_istat("048017").name == "Firenze"


def test_unknown_lookups_raise_key_error_with_a_suggestion() -> None:
    comuni = load_comuni()
    with pytest.raises(KeyError, match="did you mean firenze"):
        comuni.by_name("Firense")
    with pytest.raises(KeyError):
        comuni.by_slug("Firenze")  # slugs are canonical: lowercase
    with pytest.raises(KeyError):
        comuni.by_istat("037006")  # Bologna


def test_load_comuni_is_cached() -> None:
    assert load_comuni() is load_comuni()


def test_boundary_geojson_is_a_multipolygon_of_the_same_shape() -> None:
    comuni = load_comuni()
    firenze = comuni.by_slug("firenze")  # a Polygon in the data
    portoferraio = comuni.by_slug("portoferraio")  # on Elba
    for comune in (firenze, portoferraio):
        boundary = comune.boundary_geojson()
        assert boundary["type"] == "MultiPolygon"
        json.dumps(boundary)  # plain lists and floats
        assert isinstance(boundary["coordinates"][0][0][0], list)
        assert shape(boundary).equals(comune.geometry)
    assert isinstance(shape(portoferraio.boundary_geojson()), MultiPolygon)


def test_comune_repr_and_equality_leave_the_geometry_out() -> None:
    firenze = load_comuni().by_slug("firenze")
    assert "POLYGON" not in repr(firenze)
    assert firenze == Comune("048017", "Firenze", "firenze", "FI", firenze.geometry.buffer(1))


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Rignano sull'Arno", "rignano-sull-arno"),
        ("Acquedotto del Fiora S.p.A.", "acquedotto-del-fiora-s-p-a"),
        ("  Città -- di   Prova ", "citta-di-prova"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug
    assert valid_slug(slug)
