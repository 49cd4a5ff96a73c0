"""Which MQTT broker `contesto up` runs, and how its ingest process logs in there.

- Mosquitto, dev profile: anonymous publish and subscribe, as `make run` always had.
- Mosquitto, regional profile (CONTESTO_AUTH_REQUIRED): no anonymous clients; one user
  per device group, allowed to publish on its own topics only, and the ingest user, which
  reads all; the files live in DATA_DIR/mqtt/access and ingest keeps them in step with the
  registry.
- amqtt, when Mosquitto is not installed (or CONTESTO_MQTT_BROKER=amqtt): dev profile only,
  because it takes anonymous publishers and keeps acknowledged messages in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contesto._amqtt_broker import AmqttBroker
from contesto._mqtt_access import MqttAccessFiles
from contesto._mqtt_broker import MosquittoBroker, MqttBrokerError, find_mosquitto
from contesto._settings import StackSettings

__all__ = ["AMQTT_RISK", "LocalMqtt", "access_files", "local_mqtt"]

AMQTT_RISK = (
    "messages acknowledged by the embedded MQTT broker but not yet stored are lost "
    "if the stack stops"
)


@dataclass(slots=True)
class LocalMqtt:
    """The broker to start, what the banner says about it, and the ingest login."""

    broker: MosquittoBroker | AmqttBroker
    kind: str
    credentials: tuple[str, str] | None = None
    protocol: Literal["5", "3.1.1"] | None = None
    # The access directory ingest keeps in step with the registry, and the broker's pid file.
    access: tuple[Path, Path] | None = None
    warnings: list[str] = field(default_factory=list)


def local_mqtt(settings: StackSettings) -> LocalMqtt:
    """The stack's MQTT broker (not started); MqttBrokerError when it cannot be run."""
    data_dir = settings.data_dir.absolute() / "mqtt"
    wanted = settings.mqtt_broker
    if wanted == "amqtt" or (wanted == "auto" and find_mosquitto() is None):
        return _amqtt(settings, data_dir)
    mosquitto = MosquittoBroker(data_dir, host=settings.mqtt_host, port=settings.mqtt_port)
    mosquitto.message_size_limit = settings.ingest_max_message_bytes
    if not settings.auth_required:
        return LocalMqtt(
            mosquitto,
            "Mosquitto; dev profile: anyone may publish and subscribe, no login",
        )
    files = access_files(settings)
    mosquitto.access = files.directory
    return LocalMqtt(
        mosquitto,
        f"Mosquitto; logins and topic access per device group, in {files.directory}",
        credentials=files.ingest_credentials(),
        access=(files.directory, mosquitto.pid_file),
    )


def access_files(settings: StackSettings) -> MqttAccessFiles:
    """The regional profile's MQTT logins and ACL of the stack: DATA_DIR/mqtt/access."""
    return MqttAccessFiles(settings.data_dir.absolute() / "mqtt" / "access")


def _amqtt(settings: StackSettings, data_dir: Path) -> LocalMqtt:
    if settings.auth_required:
        raise MqttBrokerError(
            "the regional profile needs Mosquitto (`apt-get install mosquitto`) or an MQTT "
            "broker of yours (CONTESTO_MQTT_EXTERNAL=true): the embedded amqtt broker takes "
            f"anonymous publishers, and {AMQTT_RISK}"
        )
    amqtt = AmqttBroker(data_dir, host=settings.mqtt_host, port=settings.mqtt_port)
    why = "Mosquitto is not installed" if settings.mqtt_broker == "auto" else "as configured"
    return LocalMqtt(
        amqtt,
        f"amqtt, MQTT 3.1.1, {why}; dev profile: anyone may publish, no login",
        # amqtt keeps messages for a worker that is away only if it authenticated.
        credentials=amqtt.credentials,
        protocol="3.1.1",
        warnings=[f"{AMQTT_RISK}: install Mosquitto for durable MQTT"],
    )
