"""Backup and restore of tenants: one checksummed archive of their databases and records.

`back_up` writes the chosen tenants (or all) of a store into a zip of BSON parts with a
manifest; `restore` checks every part, then writes them back, under the same or another
name. Both speak only the PyMongo API, so they serve the embedded store and MongoDB alike.
"""

from __future__ import annotations

from ._archive import FORMAT_VERSION, ArchiveReader, Manifest, Part
from ._dump import back_up, product_version, stored_tenants
from ._errors import ArchiveDamaged, BackupError, RestoreConflict, TenantExists, UnknownTenant
from ._layout import DEFAULT_TENANT, StoreLayout
from ._load import Restored, restore
from ._meter import Meter, SilentMeter

__all__ = [
    "DEFAULT_TENANT",
    "FORMAT_VERSION",
    "ArchiveDamaged",
    "ArchiveReader",
    "BackupError",
    "Manifest",
    "Meter",
    "Part",
    "RestoreConflict",
    "Restored",
    "SilentMeter",
    "StoreLayout",
    "TenantExists",
    "UnknownTenant",
    "back_up",
    "product_version",
    "restore",
    "stored_tenants",
]
