"""The embedded store runs with authentication: another local client cannot read a tenant's
data or list the databases without the credentials generated into the data directory."""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from contesto import EmbeddedStore
from contesto._settings import StackSettings
from contesto._stack import _open_store

pytestmark = pytest.mark.integration

UNAUTHORIZED = 13


def _client(url: str) -> MongoClient[dict[str, object]]:
    return MongoClient(url, serverSelectionTimeoutMS=5000)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_client_without_credentials_can_neither_list_nor_read(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "db") as store:
        first = store.credentials_path.read_text()
        with _client(store.url) as owner:
            owner.ctx_prato.entities.insert_one({"_id": "urn:ngsi-ld:Sensor:prato-1"})
    assert _mode(store.storage_path) == 0o700
    assert _mode(store.credentials_path) == 0o600
    assert _mode(store.url_path) == 0o600
    with EmbeddedStore(tmp_path / "db") as store:
        assert store.credentials_path.read_text() == first, "created once, then reused"
        assert store.url_path.read_text() == store.url + "\n"
        anonymous_url = f"mongodb://127.0.0.1:{store.port}/?directConnection=true"
        with _client(anonymous_url) as stranger:
            with pytest.raises(OperationFailure) as listing:
                stranger.list_database_names()
            with pytest.raises(OperationFailure) as reading:
                stranger.ctx_prato.entities.find_one({})
            with pytest.raises(OperationFailure) as writing:
                stranger.ctx_prato.entities.insert_one({"_id": "urn:ngsi-ld:Sensor:forged"})
        assert {listing.value.code, reading.value.code, writing.value.code} == {UNAUTHORIZED}
        wrong_url = store.url.replace(store.url.split(":")[2].split("@")[0], "not-the-password")
        with _client(wrong_url) as guesser, pytest.raises(OperationFailure):
            guesser.ctx_prato.entities.find_one({})
        with _client(store.url) as owner:
            assert "ctx_prato" in owner.list_database_names()
            assert owner.ctx_prato.entities.count_documents({}) == 1


def test_the_banner_of_make_run_does_not_print_the_password(tmp_path: Path) -> None:
    with contextlib.ExitStack() as resources:
        url, lines = _open_store(StackSettings(data_dir=tmp_path), resources, [])
        password = url.split(":")[2].split("@")[0]
        banner = "\n".join(lines)
        assert password not in banner
        assert str(tmp_path / "db" / "store-url") in banner
        with _client(url) as owner:
            assert owner.admin.command("ping")["ok"] == 1
