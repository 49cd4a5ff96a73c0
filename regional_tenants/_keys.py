"""API keys and roles: a key is shown once; the registry keeps its id, a salted hash and a role.

A key is `ctk_<tenant>_<43 url-safe characters>` (32 random bytes). With 256 bits of entropy
a key cannot be guessed from its hash however fast the hash is, so the PBKDF2-SHA256 stretch is
kept short: 1,000 iterations cost about 0.6 ms a verification (measured on one core, Python
3.11, OpenSSL's `hashlib.pbkdf2_hmac`). Callers cache a verified key briefly (e.g. 60 s).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from ._slugs import valid_slug
from ._tenants import REGION_TENANT

Role = Literal["reader", "writer", "admin", "region-admin"]
ROLES: tuple[Role, ...] = get_args(Role)
# The profile a key was minted under: "dev" keys came from an open admin API (no key asked
# for) and are refused by the regional profile.
Profile = Literal["regional", "dev"]
KEY_PREFIX = "ctk_"
KEY_ID_LENGTH = 8
DEFAULT_ITERATIONS = 1_000
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_RANK: dict[str, int] = {"reader": 0, "writer": 1, "admin": 2}


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What the registry stores for a key: never the key itself."""

    key_id: str
    tenant: str
    role: Role
    salt: str
    digest: str
    iterations: int
    created_at: datetime
    profile: Profile = "regional"

    def grants(self, tenant: str, needed: Role) -> bool:
        """True when this key may act as `needed` in `tenant` (region-admin: in every tenant)."""
        return (self.tenant == tenant or self.role == "region-admin") and allows(self.role, needed)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "role": self.role,
            "salt": self.salt,
            "digest": self.digest,
            "iterations": self.iterations,
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "profile": self.profile,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiKeyRecord:
        """The inverse of `to_dict`; raises ValueError on a malformed record."""
        try:
            role = data["role"]
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}")
            # A record older than profiles cannot show where it was minted: it counts as dev.
            profile = data.get("profile", "dev")
            if profile not in ("regional", "dev"):
                raise ValueError(f"unknown profile {profile!r}")
            return cls(
                key_id=str(data["key_id"]),
                tenant=str(data["tenant"]),
                role=cast(Role, role),
                salt=str(data["salt"]),
                digest=str(data["digest"]),
                iterations=int(data["iterations"]),
                created_at=datetime.fromisoformat(data["created_at"]),
                profile=cast(Profile, profile),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an API key record: {exc!r}") from None


def allows(role: Role, needed: Role) -> bool:
    """Role order: reader < writer < admin; region-admin allows everything, and only it does."""
    if role == "region-admin":
        return True
    if needed == "region-admin":
        return False
    return _RANK[role] >= _RANK[needed]


def parse_api_key(plain_key: str) -> tuple[str, str] | None:
    """(tenant, key id) of a well-formed key, to find its record; None for anything else."""
    if not plain_key.startswith(KEY_PREFIX):
        return None
    tenant, _, secret = plain_key[len(KEY_PREFIX) :].partition("_")
    if not valid_slug(tenant) or _SECRET.fullmatch(secret) is None:
        return None
    return tenant, secret[:KEY_ID_LENGTH]


def new_api_key(
    tenant: str,
    role: Role,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    created_at: datetime | None = None,
    profile: Profile = "regional",
) -> tuple[str, ApiKeyRecord]:
    """A new key for `tenant`: the plain key (show it once) and the record to store."""
    if not valid_slug(tenant):
        raise ValueError(f"{tenant!r} is not a valid tenant slug")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role == "region-admin" and tenant != REGION_TENANT:
        raise ValueError(f"only the regional tenant {REGION_TENANT!r} has region-admin keys")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    secret = secrets.token_urlsafe(32)
    plain_key = f"{KEY_PREFIX}{tenant}_{secret}"
    salt = secrets.token_bytes(16)
    record = ApiKeyRecord(
        key_id=secret[:KEY_ID_LENGTH],
        tenant=tenant,
        role=role,
        salt=salt.hex(),
        digest=_digest(plain_key, salt, iterations).hex(),
        iterations=iterations,
        created_at=created_at or datetime.now(UTC),
        profile=profile,
    )
    return plain_key, record


def verify(plain_key: str, record: ApiKeyRecord) -> bool:
    """True when `plain_key` is the key `record` was made for (constant-time hash compare)."""
    parts = parse_api_key(plain_key)
    if parts is None or parts != (record.tenant, record.key_id):
        return False
    try:
        expected = bytes.fromhex(record.digest)
        actual = _digest(plain_key, bytes.fromhex(record.salt), record.iterations)
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _digest(plain_key: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", plain_key.encode("ascii"), salt, iterations)
