"""The backup archive without a store: parts keep every BSON type byte for byte, the
manifest describes them, and any change to a part is caught; records follow a new name."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import bson
import pytest
from bson import Binary, Decimal128, Int64, ObjectId

from contesto._backup import ArchiveDamaged, ArchiveReader, Manifest, Part, SilentMeter
from contesto._backup._archive import ArchiveWriter
from contesto._backup._layout import SHARED

DOCUMENTS = [
    {
        "_id": ObjectId(),
        "at": datetime(2026, 12, 3, 8, 0, 0, 123000, tzinfo=UTC),
        "total": Decimal128("12345.678901234567890123"),
        "count": Int64(2**62 + 1),
        "blob": Binary(b"\x00\xff"),
        "where": {"type": "Point", "coordinates": [11.1, 43.9]},
    },
    {"_id": "urn:ngsi-ld:Road:1", "name": "Via Roma"},
]


def _archive(path: Path) -> Manifest:
    writer = ArchiveWriter(path)
    part = writer.part("prato", "tenant", "entities")
    for document in DOCUMENTS:
        part.write(bson.encode(document))
    digest = part.close()
    index = {"v": 2, "key": {"at": -1}, "name": "at_-1", "unique": True}
    parts = (Part("prato", "tenant", "entities", part.documents, digest, [index]),)
    manifest = Manifest("0.1.0", datetime(2026, 12, 3, tzinfo=UTC), "ctx", "ingest", parts)
    writer.close(manifest)
    return manifest


def test_parts_come_back_byte_for_byte_with_their_manifest(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    written = _archive(path)
    reader = ArchiveReader(path)
    reader.verify(reader.manifest.parts, SilentMeter().advance)
    assert reader.manifest == written
    assert reader.manifest.tenants == ["prato"]
    (part,) = reader.manifest.parts
    read = [bytes(document.raw) for document in reader.documents(part)]
    assert read == [bson.encode(document) for document in DOCUMENTS]
    assert not (tmp_path / ".backup.zip.partial").exists()


def test_a_part_that_differs_from_its_manifest_is_named(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    _archive(path)
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(forged, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename.endswith(".bson"):
                data = bson.encode(DOCUMENTS[1])
            copy.writestr(info.filename, data)
    reader = ArchiveReader(forged)
    with pytest.raises(ArchiveDamaged, match=r"part tenants/prato/tenant/entities.bson does not"):
        reader.verify(reader.manifest.parts, SilentMeter().advance)


def test_a_truncated_part_is_damaged_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    _archive(path)
    cut = tmp_path / "cut.zip"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(cut, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            copy.writestr(info.filename, data[:-3] if info.filename.endswith(".bson") else data)
    reader = ArchiveReader(cut)
    with pytest.raises(ArchiveDamaged, match=r"part tenants/prato/tenant/entities.bson is damaged"):
        reader.verify(reader.manifest.parts, SilentMeter().advance)


def test_a_file_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveDamaged, match="not a readable Contesto backup"):
        ArchiveReader(path)


def test_records_follow_a_new_name_where_their_key_spells_the_tenant() -> None:
    kinds = {kind.name: kind for kind in SHARED}
    rule = {"_id": "prato/air", "owner": "prato", "rule": {"name": "air", "owner": "prato"}}
    assert kinds["sharing_rules"].renamed(rule, "prato2") == {
        "_id": "prato2/air",
        "owner": "prato2",
        "rule": {"name": "air", "owner": "prato2"},
    }
    assert rule["rule"]["owner"] == "prato"
    due = {"_id": "prato\nurn:ngsi-ld:Subscription:1", "tenant": "prato"}
    assert kinds["periodic_schedule"].renamed(due, "@default")["_id"] == (
        "\nurn:ngsi-ld:Subscription:1"
    )
    copy = {"_id": "prato firenze urn:x", "owner": "prato", "target": "firenze", "entity": "urn:x"}
    assert kinds["shared_copies"].renamed(copy, "prato2")["_id"] == "prato2 firenze urn:x"
    assert kinds["tenants"].renamed({"_id": "prato", "regional": {}}, "prato2")["_id"] == "prato2"
    assert not kinds["api_keys"].renamed_copy
