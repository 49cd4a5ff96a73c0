"""Onboarding a comune or a utility: its tenant record, boundary, models and admin key.

Idempotent: onboarding a tenant again updates nothing and makes no key unless asked to.
Every change is written to the tenant's audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ._comuni import Comune, load_comuni
from ._keys import Profile, Role, new_api_key
from ._registry import TenantRegistry
from ._slugs import valid_slug
from ._tenants import Tenant, tenant_for_comune

__all__ = ["Onboarded", "OnboardingError", "find_comune", "issue_key", "onboard", "onboard_comune"]


class OnboardingError(ValueError):
    """The comune or tenant asked for does not exist or cannot be onboarded."""


@dataclass(frozen=True, slots=True)
class Onboarded:
    """The tenant, whether it is new, and the admin key made now (shown once) if any."""

    tenant: Tenant
    created: bool
    admin_key: str | None


def find_comune(asked: str) -> Comune:
    """A comune by ISTAT code ("100005"), tenant slug ("prato") or name ("Prato")."""
    comuni = load_comuni()
    text = asked.strip()
    try:
        if text.isdigit():
            return comuni.by_istat(text.zfill(6))
        try:
            return comuni.by_slug(text)
        except KeyError:
            return comuni.by_name(text)
    except KeyError as exc:
        raise OnboardingError(str(exc.args[0])) from None


async def onboard(
    registry: TenantRegistry,
    tenant: Tenant,
    *,
    actor: str,
    new_key: bool = False,
    profile: Profile = "regional",
) -> Onboarded:
    """Register `tenant` (e.g. `tenant_for_comune(find_comune("Prato"))`) if it is not yet;
    make an admin key when it is new or when `new_key` is asked."""
    if not valid_slug(tenant.slug):
        raise OnboardingError(f"{tenant.slug!r} is not a valid tenant name")
    existing = await registry.get_tenant(tenant.slug)
    created = existing is None
    if existing is None:
        await registry.put_tenant(tenant)
        await registry.audit(tenant.slug, actor, "tenant.onboarded", {"kind": tenant.kind})
    else:
        tenant = existing
        if tenant.status != "active":
            tenant = replace(tenant, status="active")
            await registry.directory.resume(tenant.slug)
            await registry.audit(tenant.slug, actor, "tenant.reactivated")
    key = None
    if created or new_key:
        key = await issue_key(registry, tenant.slug, "admin", actor=actor, profile=profile)
    return Onboarded(tenant, created, key)


async def onboard_comune(
    registry: TenantRegistry,
    asked: str,
    *,
    actor: str,
    new_key: bool = False,
    profile: Profile = "regional",
) -> Onboarded:
    """`onboard` for a comune found by code, slug or name."""
    return await onboard(
        registry,
        tenant_for_comune(find_comune(asked)),
        actor=actor,
        new_key=new_key,
        profile=profile,
    )


async def issue_key(
    registry: TenantRegistry,
    tenant: str,
    role: Role,
    *,
    actor: str,
    profile: Profile = "regional",
) -> str:
    """A new key for the tenant, stored hashed; the plain key is returned once.

    `profile="dev"` marks a key minted by an open admin API: the regional profile refuses it.
    """
    plain, record = new_api_key(tenant, role, profile=profile)
    await registry.put_key(record)
    detail = {"key_id": record.key_id, "role": role, "profile": profile}
    await registry.audit(tenant, actor, "key.issued", detail)
    return plain
