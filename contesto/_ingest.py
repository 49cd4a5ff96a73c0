"""The ingest deployable: MQTT worker, outbox publisher and the device provisioning API.

Run by `contesto ingest` (and as a child process of `contesto up`); stateless apart from
its MQTT session, so several can run side by side on a shared subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from uvicorn.config import LOGGING_CONFIG

from broker_bridge import (
    CopyLedger,
    Outbox,
    Publisher,
    SharingPolicy,
    SharingStage,
    TenantClients,
)
from contesto._ingest_metrics import IngestMetrics, report_status
from contesto._ingest_operations import operations_router
from contesto._mqtt_access import (
    INGEST_USER,
    MqttAccessFiles,
    keep_access_in_step,
    reload_mosquitto,
)
from context_broker import ReadinessSettings, json_logging
from ngsild_client import HttpAdapter
from regional_tenants import TenantRegistry, platform_database
from sensor_ingest import (
    DeadLetters,
    DeviceRegistry,
    IngestSettings,
    IngestWorker,
    Pipeline,
    ProvisioningAccess,
    iot_agent_router,
)
from store_edge import connect

__all__ = ["IngestRuntime", "open_ingest", "run_ingest"]

log = logging.getLogger("contesto.ingest")


@dataclass(slots=True)
class IngestRuntime:
    """The parts of a running ingest process, for the CLI and for tests."""

    registry: DeviceRegistry
    dead_letters: DeadLetters
    outbox: Outbox
    pipeline: Pipeline
    worker: IngestWorker
    publisher: Publisher
    sharing: SharingStage
    tenants: TenantRegistry
    metrics: IngestMetrics


@contextlib.asynccontextmanager
async def open_ingest(ingest: IngestSettings) -> AsyncIterator[IngestRuntime]:
    """Connect to the store and build the worker and the publisher (not yet running)."""
    client = connect(ingest.mongo_url, journaled=not ingest.store_unjournaled_writes_risk_loss)
    try:
        database = client[ingest.pipeline_database]
        registry = DeviceRegistry(database)
        dead_letters = DeadLetters(database)
        await registry.ensure_indexes()
        await dead_letters.ensure_indexes()
        outbox = Outbox(database)
        tenants = TenantRegistry(client[platform_database(ingest.database_prefix)])
        pipeline = Pipeline(
            registry, outbox, dead_letters, max_message_bytes=ingest.ingest_max_message_bytes
        )
        metrics = IngestMetrics()
        worker = IngestWorker(
            ingest.mqtt_options(),
            pipeline,
            outbox,
            outbox_limit=ingest.outbox_limit,
            batch_size=ingest.ingest_batch_size,
            batch_wait_s=ingest.ingest_batch_wait_s,
            observer=metrics,
        )
        async with HttpAdapter(timeout_s=30.0, max_connections=16) as http:
            clients = TenantClients(http, ingest.targets())
            sharing = SharingStage(
                SharingPolicy(tenants),
                clients,
                ledger=CopyLedger(database),
                audit=_bridge_audit(tenants),
                withdraw_every_s=ingest.bridge_withdraw_every_s,
            )
            publisher = Publisher(
                outbox,
                clients,
                dead_letters.add_refused_by_broker,
                sharing=sharing,
                records_per_pass=ingest.bridge_records_per_pass,
                entities_per_request=ingest.bridge_entities_per_request,
                linger_s=ingest.bridge_linger_s,
            )
            yield IngestRuntime(
                registry,
                dead_letters,
                outbox,
                pipeline,
                worker,
                publisher,
                sharing,
                tenants,
                metrics,
            )
    finally:
        await client.close()


async def _keep_mqtt_access(
    ingest: IngestSettings, runtime: IngestRuntime, stop: asyncio.Event
) -> None:
    assert ingest.mqtt_access_dir is not None
    pid_file = ingest.mqtt_broker_pid_file
    await keep_access_in_step(
        runtime.registry.all_groups,
        MqttAccessFiles(ingest.mqtt_access_dir, ingest.mqtt_username or INGEST_USER),
        (lambda: reload_mosquitto(pid_file)) if pid_file is not None else (lambda: None),
        stop,
    )


class _SignalFreeServer(uvicorn.Server):
    """uvicorn inside a process whose own handlers stop it: it must not take the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bridge_audit(tenants: TenantRegistry) -> Callable[[str, str, dict[str, Any]], Awaitable[None]]:
    async def audit(tenant: str, action: str, detail: dict[str, Any]) -> None:
        await tenants.audit(tenant, "bridge", action, detail)

    return audit


def provisioning_app(
    registry: DeviceRegistry,
    access: ProvisioningAccess | None,
    operations: APIRouter | None = None,
) -> FastAPI:
    """The IoT-Agent-compatible provisioning API (`/iot/services`, `/iot/devices`), and the
    `operations` routes (health, metrics) when given."""
    app = FastAPI(
        title="Contesto device provisioning",
        description="FIWARE IoT Agent provisioning API shape: service groups and devices "
        "per tenant (`fiware-service` header).",
    )
    app.include_router(iot_agent_router(registry, access=access))
    if operations is not None:
        app.include_router(operations)
    return app


async def run_ingest(
    ingest: IngestSettings,
    stop: asyncio.Event,
    *,
    provisioning: tuple[str, int] | None = None,
    on_ready: Callable[[IngestRuntime], None] | None = None,
) -> None:
    """Run worker, publisher and (if given host and port) the provisioning API until `stop`."""
    async with open_ingest(ingest) as runtime:
        tasks = [
            asyncio.create_task(runtime.worker.run(stop), name="ingest-worker"),
            asyncio.create_task(runtime.publisher.run(stop), name="bridge-publisher"),
            asyncio.create_task(
                report_status(
                    runtime.worker, runtime.outbox, runtime.metrics, ingest.ingest_status_file, stop
                ),
                name="ingest-status",
            ),
        ]
        if ingest.mqtt_access_dir is not None:
            tasks.append(
                asyncio.create_task(_keep_mqtt_access(ingest, runtime, stop), name="mqtt-access")
            )
        server: uvicorn.Server | None = None
        if provisioning is not None:
            host, port = provisioning
            server = _SignalFreeServer(
                uvicorn.Config(
                    provisioning_app(
                        runtime.registry,
                        ProvisioningAccess(
                            runtime.tenants, ingest.auth_required, ingest.auto_create_tenants
                        ),
                        operations_router(
                            runtime.metrics, ReadinessSettings(), key_required=ingest.auth_required
                        ),
                    ),
                    host=host,
                    port=port,
                    log_level="warning",
                    lifespan="off",
                    # JSON logs are set up for the whole process already (serve_ingest).
                    log_config=None if ingest.log_format == "json" else LOGGING_CONFIG,
                )
            )
            tasks.append(asyncio.create_task(server.serve(), name="provisioning-api"))
        ready = asyncio.create_task(runtime.worker.ready.wait())
        await asyncio.wait([ready, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and on_ready is not None:
            on_ready(runtime)
        stopping = asyncio.create_task(stop.wait())
        _done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        if server is not None:
            server.should_exit = True
        ready.cancel()
        stopping.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise RuntimeError(f"{task.get_name()} failed: {result}") from result


def serve_ingest(
    ingest: IngestSettings,
    *,
    provisioning: tuple[str, int] | None,
    say: Callable[[str], None],
) -> None:
    """Run the ingest process until SIGINT or SIGTERM."""

    if ingest.log_format == "json":
        json_logging()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(_runtime: IngestRuntime) -> None:
            options = ingest.mqtt_options()
            lines = [
                "Contesto ingest is up.",
                f"  MQTT         {options.host}:{options.port} (MQTT {options.protocol})",
                f"  publishes to {ingest.broker_url}",
            ]
            if provisioning is not None:
                lines.append(f"  provisioning http://{provisioning[0]}:{provisioning[1]}/iot")
            say("\n".join(lines))

        await run_ingest(ingest, stop, provisioning=provisioning, on_ready=ready)

    asyncio.run(main())
