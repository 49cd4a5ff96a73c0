"""Tenant names and directory, registry, comune boundaries and routing, API keys and roles,
sharing and retention.

>>> from regional_tenants import BoundaryIndex
>>> BoundaryIndex().comuni_at(11.2558, 43.7696)
('firenze',)
"""

from __future__ import annotations

from ._access import AccessRefused, KeyGate
from ._comuni import Comune, Comuni, load_comuni
from ._directory import TenantDirectory, TenantEntry, TenantOrigin, TenantState
from ._keys import ApiKeyRecord, Profile, Role, allows, new_api_key, parse_api_key, verify
from ._mongo_directory import MongoTenantDirectory
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
from ._tenant_name import (
    MAX_TENANT_NAME_LENGTH,
    InvalidTenantName,
    TenantName,
    platform_database,
    tenant_database,
)
from ._tenants import (
    COMUNE_MODELS,
    REGION_TENANT,
    ApiValidation,
    Contact,
    Quotas,
    Tenant,
    tenant_for_comune,
)

__all__ = [
    "COMUNE_MODELS",
    "COMUNI_IT_LIES_IN",
    "GAS_ALERTS_TO_COMUNI",
    "MAX_TENANT_NAME_LENGTH",
    "REGION",
    "REGION_TENANT",
    "AccessRefused",
    "ApiKeyRecord",
    "ApiValidation",
    "AuditEntry",
    "BoundaryIndex",
    "Comune",
    "Comuni",
    "Contact",
    "GridStats",
    "InvalidTenantName",
    "KeyGate",
    "MongoTenantDirectory",
    "NotInRegion",
    "Onboarded",
    "OnboardingError",
    "Profile",
    "Quotas",
    "Role",
    "Routed",
    "SharingRule",
    "Tenant",
    "TenantDirectory",
    "TenantEntry",
    "TenantName",
    "TenantOrigin",
    "TenantRegistry",
    "TenantState",
    "allows",
    "find_comune",
    "issue_key",
    "load_comuni",
    "new_api_key",
    "onboard",
    "onboard_comune",
    "parse_api_key",
    "platform_database",
    "project",
    "slugify",
    "tenant_database",
    "tenant_for_comune",
    "valid_slug",
    "verify",
]
