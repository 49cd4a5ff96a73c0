"""The backup archive: one zip file of BSON parts (each compressed) and a manifest.

A part is one collection's documents of one tenant, concatenated BSON as the store sent
them, so every BSON type (dates, Decimal128, ObjectId, 64-bit integers) comes back as it
was. `manifest.json` (written last) gives the format, the product version, the date, and
per tenant the parts with their document counts, SHA-256 and indexes. Parts are written
and read as streams: neither a tenant nor a collection is ever held in memory.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from bson import decode_file_iter
from bson.codec_options import CodecOptions
from bson.errors import BSONError
from bson.json_util import RELAXED_JSON_OPTIONS, dumps, loads
from bson.raw_bson import RawBSONDocument

from ._errors import ArchiveDamaged
from ._layout import Place

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ArchiveReader",
    "ArchiveWriter",
    "Manifest",
    "Part",
]

FORMAT = "contesto-backup"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_CHUNK = 1 << 20
_RAW = CodecOptions(document_class=RawBSONDocument)
_JSON_READ = RELAXED_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Part:
    """One collection's documents of one tenant, as the manifest describes them."""

    tenant: str
    place: Place
    collection: str
    documents: int
    sha256: str
    indexes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"tenants/{self.tenant}/{self.place}/{self.collection}.bson"

    def to_json(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "collection": self.collection,
            "documents": self.documents,
            "sha256": self.sha256,
            "indexes": self.indexes,
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the archive holds; `parts` in the order they were written."""

    product_version: str
    created_at: datetime
    prefix: str
    pipeline_database: str
    parts: tuple[Part, ...]

    @property
    def tenants(self) -> list[str]:
        return list(dict.fromkeys(part.tenant for part in self.parts))

    def parts_of(self, tenant: str) -> list[Part]:
        return [part for part in self.parts if part.tenant == tenant]

    def dumps(self) -> str:
        tenants: dict[str, list[dict[str, Any]]] = {name: [] for name in self.tenants}
        for part in self.parts:
            tenants[part.tenant].append(part.to_json())
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "product_version": self.product_version,
            "created_at": self.created_at,
            "prefix": self.prefix,
            "pipeline_database": self.pipeline_database,
            "tenants": tenants,
        }
        return dumps(document, indent=2, json_options=RELAXED_JSON_OPTIONS)

    @classmethod
    def loads(cls, text: str) -> Manifest:
        try:
            document = loads(text, json_options=_JSON_READ)
            if document.get("format") != FORMAT:
                raise ArchiveDamaged("this file is not a Contesto backup")
            if document["format_version"] > FORMAT_VERSION:
                raise ArchiveDamaged(
                    f"the archive has format {document['format_version']}; this Contesto "
                    f"reads format {FORMAT_VERSION} and older: restore with a newer Contesto"
                )
            parts = tuple(
                Part(
                    tenant,
                    entry["place"],
                    entry["collection"],
                    int(entry["documents"]),
                    str(entry["sha256"]),
                    list(entry["indexes"]),
                )
                for tenant, entries in document["tenants"].items()
                for entry in entries
            )
            return cls(
                str(document["product_version"]),
                document["created_at"],
                str(document["prefix"]),
                str(document["pipeline_database"]),
                parts,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchiveDamaged(f"the manifest is damaged: {exc!r}") from None


class ArchiveWriter:
    """Writes an archive to a temporary file beside `path`, moved into place by `close()`,
    so a backup that fails half-way leaves no archive that looks whole."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._partial = path.with_name(f".{path.name}.partial")
        self._zip = zipfile.ZipFile(
            self._partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6
        )

    def part(self, tenant: str, place: Place, collection: str) -> PartWriter:
        probe = Part(tenant, place, collection, 0, "")
        return PartWriter(self._zip.open(probe.path, "w", force_zip64=True))

    def close(self, manifest: Manifest) -> None:
        self._zip.writestr(_MANIFEST, manifest.dumps())
        self._zip.close()
        os.replace(self._partial, self._path)

    def abandon(self) -> None:
        self._zip.close()
        self._partial.unlink(missing_ok=True)


class PartWriter:
    """Appends documents (their BSON bytes) to one part, counting and hashing them."""

    def __init__(self, member: IO[bytes]) -> None:
        self._member = member
        self._hash = hashlib.sha256()
        self.documents = 0

    def write(self, document: bytes | memoryview) -> None:
        self._member.write(document)
        self._hash.update(document)
        self.documents += 1

    def close(self) -> str:
        """Finish the part; its SHA-256 (hex)."""
        self._member.close()
        return self._hash.hexdigest()


class ArchiveReader:
    """Reads an archive: `verify()` checks every part before `documents()` is trusted."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
            text = self._zip.read(_MANIFEST).decode()
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, KeyError, OSError, zlib.error, UnicodeDecodeError) as exc:
            raise ArchiveDamaged(f"{path} is not a readable Contesto backup: {exc}") from None
        self.manifest = Manifest.loads(text)

    def verify(self, parts: Sequence[Part], advance: Callable[[int], None]) -> None:
        """ArchiveDamaged naming the first part whose bytes or count differ from the
        manifest. `advance(n)` is told each part's documents once it is checked."""
        for part in parts:
            try:
                with self._zip.open(part.path) as member:
                    hashing = _HashingReader(member)
                    count = sum(1 for _ in decode_file_iter(cast(IO[bytes], hashing), _RAW))
                    hashing.drain()
            except KeyError:
                raise ArchiveDamaged(f"part {part.path} is missing") from None
            except (BSONError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise ArchiveDamaged(f"part {part.path} is damaged: {exc}") from None
            if hashing.hexdigest() != part.sha256:
                raise ArchiveDamaged(f"part {part.path} does not match its SHA-256")
            if count != part.documents:
                raise ArchiveDamaged(
                    f"part {part.path} holds {count} documents, its manifest {part.documents}"
                )
            advance(part.documents)

    def documents(self, part: Part) -> Iterator[RawBSONDocument]:
        """The part's documents, one at a time, as raw BSON (after `verify`)."""
        with self._zip.open(part.path) as member:
            yield from decode_file_iter(member, _RAW)

    def close(self) -> None:
        self._zip.close()


class _HashingReader:
    """A file's reader that hashes what passes through it."""

    def __init__(self, member: IO[bytes]) -> None:
        self._member = member
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._member.read(size)
        self._hash.update(chunk)
        return chunk

    def drain(self) -> None:
        """Hash what the decoder left (trailing bytes that are no document)."""
        while self.read(_CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
