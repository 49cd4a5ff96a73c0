"""The embedded store's user and password: generated once, kept in a file only its owner reads."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["StoreCredentials", "write_private"]

USERNAME = "contesto"


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable and writable by the owner only (0600) from birth."""
    pending = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(pending, path)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise


@dataclass(slots=True, frozen=True)
class StoreCredentials:
    """A SCRAM user of the store; `provisioned` once the store holds it."""

    username: str
    password: str
    provisioned: bool = False

    @classmethod
    def load_or_create(cls, path: Path) -> StoreCredentials:
        """The credentials in `path`, or new ones written there (0600) if it does not exist."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            created = cls(USERNAME, secrets.token_urlsafe(32))
            created.save(path)
            return created
        try:
            fields = json.loads(text)
            username, password = str(fields["username"]), str(fields["password"])
            return cls(username, password, bool(fields["provisioned"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not a credentials file of the embedded store") from None

    def save(self, path: Path) -> None:
        fields = {"username": self.username, "password": self.password}
        write_private(path, json.dumps({**fields, "provisioned": self.provisioned}) + "\n")

    def marked_provisioned(self, path: Path) -> StoreCredentials:
        done = replace(self, provisioned=True)
        done.save(path)
        return done
