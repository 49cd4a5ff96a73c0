"""MQTT logins and topic access for Mosquitto, from the device registry: the files of
`contesto devices mqtt-acl`, and the task that keeps them in step with the registry under
`contesto up` in the regional profile (rewrite, then SIGHUP so Mosquitto reloads them).

A directory holds `credentials` (user:password lines, to hand to vendors), `passwd`
(Mosquitto's hashed password_file) and `acl` (its acl_file), all mode 0600.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from subprocess import SubprocessError

from broker_bridge import sleep_or_stop
from sensor_ingest import ServiceGroup
from sensor_ingest._mqtt_acl import mosquitto_access
from store_edge import StoreError

__all__ = [
    "INGEST_USER",
    "MqttAccessError",
    "MqttAccessFiles",
    "keep_access_in_step",
    "reload_mosquitto",
]

log = logging.getLogger("contesto.mqtt_access")

INGEST_USER = "contesto-ingest"


class MqttAccessError(RuntimeError):
    """The access files could not be written; the message says why."""


class MqttAccessFiles:
    """The access files in `directory`; passwords already given out are kept."""

    def __init__(self, directory: Path, ingest_user: str = INGEST_USER) -> None:
        self.directory = Path(directory).absolute()
        self.ingest_user = ingest_user

    @property
    def credentials_path(self) -> Path:
        return self.directory / "credentials"

    def passwords(self) -> dict[str, str]:
        """Every user's password, as written in `credentials`."""
        try:
            text = self.credentials_path.read_text()
        except FileNotFoundError:
            return {}
        found = {}
        for line in text.splitlines():
            user, _, password = line.partition(":")
            if password:
                found[user] = password
        return found

    def ingest_credentials(self) -> tuple[str, str]:
        """The ingest workers' user and password; the files are made if there are none."""
        if not (self.directory / "acl").exists() or self.ingest_user not in self.passwords():
            self.write([])
        return self.ingest_user, self.passwords()[self.ingest_user]

    def write(self, groups: list[ServiceGroup]) -> bool:
        """Write the files for `groups`; False if they already said the same."""
        access = mosquitto_access(groups, self.ingest_user)
        known = self.passwords()
        users = [self.ingest_user, *access.users]
        passwords = {user: known.get(user) or secrets.token_urlsafe(18) for user in users}
        credentials = "".join(f"{user}:{password}\n" for user, password in passwords.items())
        acl_path, passwd_path = self.directory / "acl", self.directory / "passwd"
        if (
            passwd_path.exists()
            and _read(self.credentials_path) == credentials
            and _read(acl_path) == access.acl
        ):
            return False
        hasher = shutil.which("mosquitto_passwd") or shutil.which(
            "mosquitto_passwd", path="/usr/bin:/usr/sbin:/usr/local/bin"
        )
        if hasher is None:
            raise MqttAccessError("mosquitto_passwd not found: apt-get install mosquitto")
        self.directory.mkdir(parents=True, exist_ok=True)
        hashed = self.directory / "passwd.new"
        _write_private(hashed, credentials)
        subprocess.run([hasher, "-U", str(hashed)], check=True, capture_output=True)
        _write_private(self.directory / "acl.new", access.acl)
        _write_private(self.directory / "credentials.new", credentials)
        # Replace each file whole, so a reload never reads half of one.
        hashed.replace(passwd_path)
        (self.directory / "acl.new").replace(acl_path)
        (self.directory / "credentials.new").replace(self.credentials_path)
        return True


def reload_mosquitto(pid_file: Path) -> None:
    """Ask the Mosquitto whose pid `pid_file` holds to reload its password and ACL files."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.warning("cannot signal Mosquitto to reload its access files: %s", exc)


async def keep_access_in_step(
    groups: Callable[[], Awaitable[list[ServiceGroup]]],
    files: MqttAccessFiles,
    reload: Callable[[], None],
    stop: asyncio.Event,
    every_s: float = 2.0,
) -> None:
    """Until `stop`: every `every_s`, rewrite the files if the groups changed, then reload."""
    while not stop.is_set():
        try:
            changed = await asyncio.to_thread(files.write, await groups())
        except (
            StoreError,
            MqttAccessError,
            OSError,
            SubprocessError,
        ) as exc:
            # The store may be down: keep the files as they are and try again.
            log.warning("cannot update the MQTT access files: %s", exc)
        else:
            if changed:
                log.info("MQTT access files updated; Mosquitto reloads them")
                reload()
        await sleep_or_stop(stop, every_s)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by this user only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)
