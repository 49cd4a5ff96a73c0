"""Tenant names: one rule for the NGSILD-Tenant header, fiware-service, the CLI and slugs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regional_tenants import (
    MAX_TENANT_NAME_LENGTH,
    InvalidTenantName,
    TenantName,
    load_comuni,
    platform_database,
    tenant_database,
    valid_slug,
)

# MongoDB refuses database names of 64 characters or more.
MONGODB_DATABASE_NAME_LIMIT = 63


@pytest.mark.parametrize(
    ("given_name", "name"),
    [
        ("prato", "prato"),
        ("Prato", "prato"),
        ("PUBLIACQUA", "publiacqua"),
        ("t_1-a", "t_1-a"),
        ("0", "0"),
        ("a" * 48, "a" * 48),
    ],
)
def test_a_name_is_folded_to_lower_case(given_name: str, name: str) -> None:
    assert TenantName.parse(given_name).value == name
    assert str(TenantName.parse(given_name)) == name


@pytest.mark.parametrize(
    "bad",
    ["", "-prato", "_prato", "pra to", "prato.", "pra/to", "città", "\u212aelvin", "a" * 49],
)
def test_a_name_outside_the_rule_is_refused_with_the_rule_stated(bad: str) -> None:
    with pytest.raises(InvalidTenantName) as refused:
        TenantName.parse(bad)
    assert str(refused.value) == (
        "a tenant name must be 1-48 letters, digits, '-' or '_', starting with a letter or "
        f"digit; got {bad!r}"
    )
    assert refused.value.explain("NGSILD-Tenant").startswith("NGSILD-Tenant must be 1-48 ")


def test_a_value_is_already_folded() -> None:
    with pytest.raises(InvalidTenantName):
        TenantName("Prato")


@given(st.text(max_size=60))
def test_parsing_is_idempotent_and_case_insensitive(text: str) -> None:
    try:
        name = TenantName.parse(text)
    except InvalidTenantName:
        return
    assert TenantName.parse(name.value) == name == TenantName.parse(text.upper())
    assert 1 <= len(name.value) <= MAX_TENANT_NAME_LENGTH


def test_every_slug_is_a_tenant_name_and_every_comune_slug_fits() -> None:
    slugs = [comune.slug for comune in load_comuni()]
    assert all(TenantName.parse(slug).value == slug for slug in slugs)
    assert max(map(len, slugs)) <= MAX_TENANT_NAME_LENGTH
    assert valid_slug("a" * MAX_TENANT_NAME_LENGTH)
    assert not valid_slug("a" * (MAX_TENANT_NAME_LENGTH + 1))


@pytest.mark.parametrize("prefix", ["ctx", "storekill", "r0123abcd"])
def test_the_longest_name_fits_a_database_name_with_the_prefixes_in_use(prefix: str) -> None:
    longest = "a" * MAX_TENANT_NAME_LENGTH
    assert len(tenant_database(prefix, longest)) <= MONGODB_DATABASE_NAME_LIMIT
    assert tenant_database(prefix, None) == prefix
    assert platform_database(prefix) == f"{prefix}__platform"
