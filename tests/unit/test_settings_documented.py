"""Every environment variable the product reads has a row of its own in a settings table of
docs/ (a row that begins with the variable in backquotes), written out in full."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from contesto._settings import StackSettings
from context_broker._settings import BrokerSettings, ReadinessSettings
from sensor_ingest._settings import IngestSettings

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("contesto", "context_broker", "sensor_ingest", "broker_bridge")
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    StackSettings,
    ReadinessSettings,
    BrokerSettings,
    IngestSettings,
)


def settings_variables() -> set[str]:
    """CONTESTO_<FIELD> of every field of the pydantic settings classes."""
    return {
        f"{cls.model_config.get('env_prefix', '')}{name}".upper()
        for cls in SETTINGS_CLASSES
        for name in cls.model_fields
    }


def option_variables() -> set[str]:
    """The variables CLI options read (`envvar=`) and the code reads from os.environ."""
    pattern = re.compile(
        r"(?:envvar=|environ\.get\(|environ\[|getenv\()\s*\"(CONTESTO_[A-Z0-9_]+)\""
    )
    found: set[str] = set()
    for package in PRODUCT_PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            found.update(pattern.findall(source.read_text(encoding="utf-8")))
    return found


def documented_variables() -> set[str]:
    """The variables that begin a row of a table in docs/*.md."""
    row = re.compile(r"^\| `(CONTESTO_[A-Z0-9_]+)`(?:, `(CONTESTO_[A-Z0-9_]+)`)*", re.M)
    found: set[str] = set()
    for page in (ROOT / "docs").glob("*.md"):
        for match in row.finditer(page.read_text(encoding="utf-8")):
            found.update(re.findall(r"`(CONTESTO_[A-Z0-9_]+)`", match.group(0)))
    return found


def test_the_settings_are_found() -> None:
    variables = settings_variables() | option_variables()
    assert {"CONTESTO_MQTT_PORT", "CONTESTO_PROVISIONING_PORT", "CONTESTO_MONGO_URL"} <= variables
    assert "CONTESTO_CONFORMANCE_TOKEN" in variables
    assert len(variables) > 60


def test_every_setting_has_a_row_in_the_docs() -> None:
    missing = sorted((settings_variables() | option_variables()) - documented_variables())
    assert not missing, f"settings no table of docs/ documents: {missing}"


def test_the_docs_name_no_setting_the_product_does_not_read() -> None:
    unknown = sorted(documented_variables() - settings_variables() - option_variables())
    assert not unknown, f"documented but never read: {unknown}"
