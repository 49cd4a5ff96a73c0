"""The tenant directory port: which tenants exist, their status, and their creation,
suspension and deletion.

Every process that serves tenants (the broker, the access guard, the provisioning API, the
CLI) asks one `TenantDirectory`; a deletion or suspension made anywhere reaches each
process's cached answers within the directory's cache time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["TenantDirectory", "TenantEntry", "TenantOrigin", "TenantState"]

TenantState = Literal["active", "suspended"]
TenantOrigin = Literal["onboarded", "auto"]
"""`onboarded`: a regional record exists; `auto`: created by a first write."""


@dataclass(frozen=True, slots=True)
class TenantEntry:
    """One tenant as the directory lists it."""

    name: str
    origin: TenantOrigin
    status: TenantState


class TenantDirectory(Protocol):
    """Tenants by name (an already valid, lower-case `TenantName` value)."""

    async def exists(self, name: str) -> bool: ...

    async def create_if_allowed(self, name: str) -> bool:
        """True when the tenant exists afterwards: it did, or the auto-create policy made it."""
        ...

    async def status(self, name: str) -> TenantState | None:
        """None for a tenant that does not exist."""
        ...

    async def suspend(self, name: str) -> bool:
        """Suspend an onboarded tenant (its data stays); False when none has that name."""
        ...

    async def resume(self, name: str) -> bool:
        """Serve a suspended onboarded tenant again; False when none has that name."""
        ...

    async def delete(self, name: str) -> bool:
        """Forget the tenant and drop its data; False when it did not exist."""
        ...

    async def entries(self) -> list[TenantEntry]:
        """Every tenant, onboarded or created by a first write, by name."""
        ...

    def on_forget(self, listener: Callable[[str], None]) -> None:
        """Call `listener(name)` whenever this process learns that a tenant was deleted or
        changed status, so that what it keeps about the tenant is dropped."""
        ...
