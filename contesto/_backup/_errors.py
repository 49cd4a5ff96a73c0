"""What stops a backup or a restore: one root, one subclass per reason a user can act on."""

from __future__ import annotations

__all__ = ["ArchiveDamaged", "BackupError", "RestoreConflict", "TenantExists", "UnknownTenant"]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


class ArchiveDamaged(BackupError):
    """The archive cannot be trusted: unreadable, of another format, or a part that does
    not match its checksum or count (the message names the part)."""


class UnknownTenant(BackupError):
    """A tenant asked for that the store (backup) or the archive (restore) does not hold."""


class TenantExists(BackupError):
    """The restore would overwrite a tenant of the store, and `--replace` was not given."""


class RestoreConflict(BackupError):
    """A record to restore is another tenant's in the store (a service group's key, a
    hosted @context's id): writing it would take it from that tenant."""
