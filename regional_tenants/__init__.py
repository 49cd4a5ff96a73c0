"""Tenant registry, comune boundaries and routing, API keys and roles, sharing and retention.

>>> from regional_tenants import BoundaryIndex
>>> BoundaryIndex().comuni_at(11.2558, 43.7696)
('firenze',)
"""

from __future__ import annotations

from ._access import AccessRefused, KeyGate
from ._comuni import Comune, Comuni, load_comuni
from ._keys import ApiKeyRecord, Profile, Role, allows, new_api_key, parse_api_key, verify
from ._onboarding import (
    Onboarded,
    OnboardingError,
    find_comune,
    issue_key,
    onboard,
    onboard_comune,
)
from ._registry import AuditEntry, TenantRegistry
from ._routing import BoundaryIndex, GridStats, NotInRegion, Routed
from ._sharing import (
    COMUNI_IT_LIES_IN,
    GAS_ALERTS_TO_COMUNI,
    REGION,
    SharingRule,
    project,
)
from ._slugs import slugify, valid_slug
from ._tenants import COMUNE_MODELS, REGION_TENANT, Contact, Quotas, Tenant, tenant_for_comune

__all__ = [
    "COMUNE_MODELS",
    "COMUNI_IT_LIES_IN",
    "GAS_ALERTS_TO_COMUNI",
    "REGION",
    "REGION_TENANT",
    "AccessRefused",
    "ApiKeyRecord",
    "AuditEntry",
    "BoundaryIndex",
    "Comune",
    "Comuni",
    "Contact",
    "GridStats",
    "KeyGate",
    "NotInRegion",
    "Onboarded",
    "OnboardingError",
    "Profile",
    "Quotas",
    "Role",
    "Routed",
    "SharingRule",
    "Tenant",
    "TenantRegistry",
    "allows",
    "find_comune",
    "issue_key",
    "load_comuni",
    "new_api_key",
    "onboard",
    "onboard_comune",
    "parse_api_key",
    "project",
    "slugify",
    "tenant_for_comune",
    "valid_slug",
    "verify",
]
