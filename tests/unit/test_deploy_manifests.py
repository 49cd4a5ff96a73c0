"""The production recipe in deploy/ stays valid: Kubernetes manifests against the
Kubernetes schemas, the compose file against the compose specification, every CONTESTO_
variable a real setting, and Mosquitto's files the same in compose and Kubernetes."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contesto._mqtt_broker import mosquitto_config
from contesto._settings import StackSettings
from context_broker import BrokerSettings
from sensor_ingest import DEFAULT_MAX_MESSAGE_BYTES, IngestSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
# The oldest Kubernetes release the manifests promise to run on.
KUBERNETES_VERSION = "1.30"
SETTINGS_CLASSES = (BrokerSettings, StackSettings, IngestSettings)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _all_resources() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in MANIFESTS
        for doc in _documents(path)
    ]


def _compose() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return found


def _compose_schema_errors(document: dict[str, Any]) -> list[str]:
    """Errors against the compose specification's schema (as check-jsonschema ships it)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(document)]


def _by_kind(kind: str, name: str) -> dict[str, Any]:
    for _, doc in _all_resources():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes")


@pytest.mark.parametrize(("resource", "document"), _all_resources(), ids=lambda v: str(v)[:60])
def test_every_manifest_is_valid_kubernetes(resource: str, document: dict[str, Any]) -> None:
    """Unknown fields are errors too (strict), so a misspelled key cannot pass silently."""
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_refuses_a_misspelled_field() -> None:
    deployment = copy.deepcopy(_by_kind("Deployment", "contesto-api"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_recipe_has_every_part_the_operations_page_promises() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in _all_resources()}
    assert {
        ("Deployment", "contesto-api"),
        ("Deployment", "contesto-ingest"),
        ("Service", "contesto-api"),
        ("PodDisruptionBudget", "contesto-api"),
        ("PodDisruptionBudget", "contesto-ingest"),
        ("ConfigMap", "contesto-settings"),
        ("Secret", "contesto-secrets"),
        ("StatefulSet", "mosquitto"),
    } <= kinds
    for name in ("contesto-api", "contesto-ingest"):
        for container in _by_kind("Deployment", name)["spec"]["template"]["spec"]["containers"]:
            assert {"livenessProbe", "readinessProbe"} <= container.keys(), name
            assert {"requests", "limits"} <= container["resources"].keys(), name
    mosquitto = _by_kind("StatefulSet", "mosquitto")["spec"]
    assert [claim["metadata"]["name"] for claim in mosquitto["volumeClaimTemplates"]] == ["data"]


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert _compose_schema_errors(_compose()) == []


def test_the_compose_check_refuses_a_misspelled_key() -> None:
    broken = _compose()
    broken["services"]["api"]["restrat"] = broken["services"]["api"].pop("restart")
    assert _compose_schema_errors(broken) != []


def test_the_compose_replica_set_has_three_members_and_an_init() -> None:
    services = _compose()["services"]
    members = [name for name in services if re.fullmatch(r"mongo-\d", name)]
    assert members == ["mongo-1", "mongo-2", "mongo-3"]
    init = services["mongo-init"]
    assert set(init["depends_on"]) == set(members)
    script = (DEPLOY / "mongo" / "init-replica-set.js").read_text()
    for member in members:
        assert f"{member}:27017" in script
        assert f"{member}:27017" in services["api"]["environment"]["CONTESTO_MONGO_URL"]
    for service in ("api", "ingest", "mqtt-access"):
        condition = services[service]["depends_on"]["mongo-init"]["condition"]
        assert condition == "service_completed_successfully"


def _setting_names() -> set[str]:
    return {
        f"CONTESTO_{name.upper()}"
        for settings in SETTINGS_CLASSES
        for name in settings.model_fields
    }


def _variables_in_deploy() -> dict[str, set[str]]:
    """Every CONTESTO_ name the recipes set or read, with the files that name it."""
    found: dict[str, set[str]] = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            for name in re.findall(r"\bCONTESTO_[A-Z0-9_]+", path.read_text()):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_contesto_variable_of_the_recipes_is_a_real_setting() -> None:
    """A renamed or removed setting breaks this test instead of being ignored in production."""
    variables = _variables_in_deploy()
    assert len(variables) >= 10
    unknown = {name: files for name, files in variables.items() if name not in _setting_names()}
    assert unknown == {}


def test_every_setting_the_production_docs_name_is_a_real_setting() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\bCONTESTO_[A-Z0-9_]+", section))
    assert len(named) >= 10
    assert named - _setting_names() == set()


def test_the_check_of_setting_names_catches_a_typo() -> None:
    assert "CONTESTO_MONGO_URL" in _setting_names()
    assert "CONTESTO_MONGO_URI" not in _setting_names()


def test_kubernetes_holds_the_mosquitto_files_of_deploy_as_they_are() -> None:
    data = _by_kind("ConfigMap", "mosquitto")["data"]
    for name in ("mosquitto.conf", "run-mosquitto.sh"):
        assert data[name] == (DEPLOY / "mosquitto" / name).read_text(), name


def test_mosquitto_keeps_what_contesto_up_keeps() -> None:
    """Persistence, queue bounds and the payload limit as `contesto up` writes them."""
    recipe = set((DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines())
    stack = mosquitto_config(
        "127.0.0.1", 1883, Path("/data"), Path("/access"), DEFAULT_MAX_MESSAGE_BYTES
    )
    kept = [
        line
        for line in stack.splitlines()
        if line
        and not line.startswith(("user ", "listener ", "persistence_location ", "#"))
        and not line.startswith(("password_file ", "acl_file "))
    ]
    assert [line for line in kept if line not in recipe] == []
    assert "allow_anonymous false" in recipe
    assert f"message_size_limit {DEFAULT_MAX_MESSAGE_BYTES}" in recipe


def test_the_image_holds_every_package_and_runs_as_a_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["mypy"]["packages"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
        assert f"!{package}" in ignore, package
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) == 2
    user = re.search(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user is not None and not user.group(1).startswith(("0", "root"))
    assert re.search(r"^HEALTHCHECK ", dockerfile, re.MULTILINE)


def test_compose_and_kubernetes_run_the_same_commands() -> None:
    services = _compose()["services"]
    api = _by_kind("Deployment", "contesto-api")["spec"]["template"]["spec"]["containers"][0]
    ingest = _by_kind("Deployment", "contesto-ingest")["spec"]["template"]["spec"]
    assert api["args"] == services["api"]["command"]
    assert ingest["containers"][0]["args"] == services["ingest"]["command"]
    api_env = {item["name"]: item["value"] for item in api["env"]}
    assert api_env["CONTESTO_INGEST"] == services["api"]["environment"]["CONTESTO_INGEST"]
