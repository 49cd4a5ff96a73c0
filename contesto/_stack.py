"""The stack of `contesto up`: a store (embedded unless configured) and the NGSI-LD broker."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn

from contesto._api_child import ApiChild, ApiChildError
from contesto._child import ChildProcess
from contesto._embedded import EmbeddedStore, EmbeddedStoreError
from contesto._ingest_child import IngestChild, IngestChildError, ingest_status_path
from contesto._mqtt_access import MqttAccessError
from contesto._mqtt_broker import MqttBrokerError, find_mosquitto
from contesto._runtime_file import StackRuntime, remove_runtime, runtime_path
from contesto._settings import StackSettings
from contesto._stack_lock import StackLock, StackLocked
from contesto._stack_metrics import restart_counter
from contesto._stack_mqtt import LocalMqtt, local_mqtt
from contesto._store_lock import StoreLocked, clear_orphaned_store
from contesto._supervisor import RestartPolicy, Supervisor
from context_broker import BrokerSettings, create_app, json_logging_config, shared_metrics
from sensor_ingest import IngestSettings

__all__ = ["StackError", "run_stack"]

NGSI_LD_PATH = "/ngsi-ld/v1"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A stop signal ends the stack within 10 s whatever its children do: the API gets this
# long to finish its requests and its shutdown, the children the rest.
_API_STOP_S = 2.5
_CHILDREN_STOP_S = 5.5


class StackError(RuntimeError):
    """The stack could not start; the message says why in a user's words."""


def run_stack(settings: StackSettings, say: Callable[[str], None]) -> None:
    """Run the store, MQTT, ingest and the broker until SIGINT or SIGTERM, restarting a
    child that dies, then stop them all, the API first and the store last.

    Returns normally after a stop by signal; raises StackError when the stack cannot start
    or a child keeps dying.
    """
    _check_workers(settings)
    http_socket = _listen(settings.host, settings.port)
    try:
        with contextlib.ExitStack() as resources:
            resources.callback(http_socket.close)
            children: list[tuple[str, ChildProcess]] = []
            # Until the HTTP server runs, SIGTERM unwinds like Ctrl-C so the store is stopped.
            with _signal_handlers(_interrupt):
                _lock_data_dir(settings, resources, say)
                resources.enter_context(shared_metrics(_metrics_dir(settings)))
                mongo_url, store_lines = _open_store(settings, resources, children)
                status_file = None
                if settings.ingest:
                    store_lines += _open_ingest(settings, mongo_url, resources, children)
                    # The API is ready while every ingest worker reports.
                    status_file = os.pathsep.join(
                        str(ingest_status_path(settings.data_dir, index))
                        for index in range(settings.workers)
                    )
                if settings.workers > 1:
                    store_lines += _open_api_processes(
                        settings, http_socket, mongo_url, status_file, resources, children
                    )
            if settings.workers > 1:
                _supervise_api_processes(settings, mongo_url, store_lines, children, resources, say)
                return
            app = create_app(BrokerSettings(mongo_url=mongo_url, ingest_status_file=status_file))
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    log_level=settings.log_level,
                    lifespan="on",
                    access_log=settings.access_log,
                    timeout_graceful_shutdown=int(_API_STOP_S / 2),
                    **_log_config(settings),
                )
            )
            policy = RestartPolicy(settings.restart_max, settings.restart_window_s)
            supervisor = Supervisor(
                children,
                policy,
                say,
                give_up=lambda _: _ask_exit(server),
                on_restart=restart_counter(),
            )
            supervisor.start()
            resources.callback(supervisor.stop, _CHILDREN_STOP_S)
            banner = _banner(settings, store_lines)
            runtime = StackRuntime.of(settings, mongo_url)
            resources.callback(remove_runtime, settings.data_dir)

            def ready() -> None:
                # Operator commands find the stack through this file once the API serves.
                runtime.write(settings.data_dir)
                say(banner)

            # uvicorn handles the signals while it serves and re-raises them after its
            # shutdown; ours ask the server to exit, which is a no-op once it has.
            with _signal_handlers(_exit_handler(server)):
                # The loop uvicorn is configured for (uvloop when installed), as `uvicorn.run`
                # would choose it; `asyncio.run` would always take the slower default loop.
                loop_factory = server.config.get_loop_factory()
                try:
                    with asyncio.Runner(loop_factory=loop_factory) as runner:
                        runner.run(_serve(server, http_socket, ready))
                except SystemExit as exc:  # uvicorn exits this way when the app fails to start
                    raise StackError("the broker did not start: see the error above") from exc
            if supervisor.failure is not None:
                raise StackError(supervisor.failure)
    except KeyboardInterrupt:
        return


def _check_workers(settings: StackSettings) -> None:
    """Several ingest workers need MQTT v5 shared subscriptions, or each would take every
    message: refuse the MQTT 3.1.1 fallbacks before anything starts."""
    if settings.workers == 1 or not settings.ingest:
        return
    wanted = settings.mqtt_broker
    amqtt = not settings.mqtt_external and (
        wanted == "amqtt" or (wanted == "auto" and find_mosquitto() is None)
    )
    if amqtt or IngestSettings().mqtt_protocol != "5":
        mqtt = "the embedded amqtt broker" if amqtt else "CONTESTO_MQTT_PROTOCOL=3.1.1"
        raise StackError(
            f"--workers {settings.workers} needs MQTT v5 shared subscriptions, so that each "
            f"message goes to one ingest worker; {mqtt} speaks MQTT 3.1.1 only: install "
            "Mosquitto 2 (or use an MQTT v5 broker), or run with --workers 1"
        )


def _open_api_processes(
    settings: StackSettings,
    http_socket: socket.socket,
    mongo_url: str,
    status_file: str | None,
    resources: contextlib.ExitStack,
    children: list[tuple[str, ChildProcess]],
) -> list[str]:
    """`settings.workers` API processes serving `http_socket`, started last so stopped first."""
    env = {"CONTESTO_MONGO_URL": mongo_url}
    if status_file is not None:
        env["CONTESTO_INGEST_STATUS_FILE"] = status_file
    for index in range(settings.workers):
        child = ApiChild(settings, index, http_socket, env)
        try:
            resources.enter_context(child)
        except ApiChildError as exc:
            raise StackError(str(exc)) from None
        children.append((f"API process {index}", child))
    logs = settings.data_dir.absolute() / "api-N.log"
    return [f"  API          {settings.workers} processes on one port, logs in {logs}"]


def _supervise_api_processes(
    settings: StackSettings,
    mongo_url: str,
    store_lines: list[str],
    children: list[tuple[str, ChildProcess]],
    resources: contextlib.ExitStack,
    say: Callable[[str], None],
) -> None:
    """With the API in child processes, this one only supervises until a stop signal."""
    stopping = threading.Event()
    supervisor = Supervisor(
        children,
        RestartPolicy(settings.restart_max, settings.restart_window_s),
        say,
        give_up=lambda _: stopping.set(),
        on_restart=restart_counter(),
    )
    supervisor.start()
    resources.callback(supervisor.stop, _CHILDREN_STOP_S + _API_STOP_S)
    resources.callback(remove_runtime, settings.data_dir)
    StackRuntime.of(settings, mongo_url).write(settings.data_dir)
    say(_banner(settings, store_lines))
    with _signal_handlers(lambda _signum, _frame: stopping.set()):
        while not stopping.wait(0.2):
            pass
    if supervisor.failure is not None:
        raise StackError(supervisor.failure)


def _metrics_dir(settings: StackSettings) -> str:
    """The directory where the API and ingest write their metrics (multiprocess mode),
    emptied at start so a scrape shows this stack's counts only."""
    directory = settings.data_dir.absolute() / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return str(directory)


def _log_config(settings: StackSettings) -> dict[str, Any]:
    """uvicorn's logging: its own text format, or JSON lines for every logger."""
    if settings.log_format == "json":
        return {"log_config": json_logging_config(settings.log_level)}
    return {}


def _lock_data_dir(
    settings: StackSettings, resources: contextlib.ExitStack, say: Callable[[str], None]
) -> None:
    """One stack per data directory; after a stack that crashed, stop the store it left."""
    data_dir = settings.data_dir.absolute()
    lock = StackLock(data_dir)
    try:
        crashed = lock.acquire()
    except StackLocked as exc:
        raise StackError(str(exc)) from None
    resources.callback(lock.release)
    if crashed is not None:
        say(f"contesto up: the previous stack on {data_dir} (PID {crashed}) did not stop cleanly")
    if settings.mongo_url is None:
        try:
            clear_orphaned_store(data_dir / "db", say)
        except StoreLocked as exc:
            raise StackError(str(exc)) from None


def _open_store(
    settings: StackSettings,
    resources: contextlib.ExitStack,
    children: list[tuple[str, ChildProcess]],
) -> tuple[str, list[str]]:
    if settings.mongo_url is not None:
        return settings.mongo_url, [f"  store        MongoDB at {_redact(settings.mongo_url)}"]
    data_dir = settings.data_dir.absolute()
    store = EmbeddedStore(
        data_dir / "db",
        log_path=data_dir / "secantus.log",
        journaled=not settings.store_unjournaled_writes_risk_loss,
        cache_size=settings.store_cache_size,
    )
    try:
        resources.enter_context(store)
    except EmbeddedStoreError as exc:
        raise StackError(str(exc)) from None
    children.append(("the embedded store", store))
    lines = [
        f"  store        embedded (SecantusDB), data in {store.storage_path}",
        f"  store URL    {store.redacted_url}",
        f"               full URL in {store.url_path} (owner only)",
        f"  store log    {store.log_path} (cache {store.cache_size})",
    ]
    if not store.journaled:
        lines.append("  WARNING      unjournaled writes: a store crash loses acknowledged data")
    return store.url, lines


def _open_ingest(
    settings: StackSettings,
    mongo_url: str,
    resources: contextlib.ExitStack,
    children: list[tuple[str, ChildProcess]],
) -> list[str]:
    """The MQTT broker (unless external) and the ingest process, which publishes to our API."""
    lines = []
    local: LocalMqtt | None = None
    if settings.mqtt_external:
        lines.append(f"  MQTT         {settings.mqtt_host}:{settings.mqtt_port} (external)")
    else:
        try:
            local = local_mqtt(settings)
            resources.enter_context(local.broker)
        except (MqttBrokerError, MqttAccessError) as exc:
            raise StackError(str(exc)) from None
        children.append(("the MQTT broker", local.broker))
        lines.append(f"  MQTT         {settings.mqtt_host}:{local.broker.port} ({local.kind})")
        lines += [f"  WARNING      {warning}" for warning in local.warnings]
    for index in range(settings.workers):
        child = IngestChild(
            settings,
            mongo_url,
            mqtt_credentials=local.credentials if local else None,
            mqtt_protocol=local.protocol if local else None,
            mqtt_access=local.access if local else None,
            index=index,
        )
        try:
            resources.enter_context(child)
        except IngestChildError as exc:
            raise StackError(str(exc)) from None
        name = "the ingest process" if settings.workers == 1 else f"ingest worker {index}"
        children.append((name, child))
    lines += [
        f"  provisioning http://{settings.host}:{settings.provisioning_port}/iot"
        " (IoT Agent API: fiware-service = tenant)",
        f"  ingest log   {settings.data_dir.absolute() / 'ingest.log'}",
    ]
    if settings.workers > 1:
        lines.append(
            f"  ingest       {settings.workers} workers in one MQTT v5 shared subscription"
            " group, the others' logs in ingest-N.log"
        )
    return lines


async def _serve(server: uvicorn.Server, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not (server.started or serving.done()):
        await asyncio.sleep(0.05)
    if server.started:
        on_ready()
    while not (server.should_exit or serving.done()):
        await asyncio.sleep(0.1)
    # A store that is gone must not hold the shutdown: the API gets a bounded time.
    _, unfinished = await asyncio.wait([serving], timeout=_API_STOP_S)
    if unfinished:
        server.force_exit = True
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        return
    await serving


def _listen(host: str, port: int) -> socket.socket:
    """Bind the HTTP port before anything starts, so a taken port is a plain error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StackError(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StackError(
                f"port {port} on {host} is already in use: stop what listens there "
                "or choose another port with --port (or CONTESTO_PORT)"
            ) from None
        raise StackError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _banner(settings: StackSettings, store_lines: list[str]) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return "\n".join(
        [
            "Contesto is up.",
            f"  NGSI-LD API  http://{host}:{settings.port}{NGSI_LD_PATH}",
            f"  home page    http://{host}:{settings.port}/ (what runs, links; /version)",
            *store_lines,
            "Operator commands (contesto tenants, devices, dead-letter) find it through"
            f" {runtime_path(settings.data_dir)}.",
            "Stop with Ctrl-C.",
        ]
    )


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ask_exit(server: uvicorn.Server) -> None:
    """The first request stops the server gracefully, a second one at once."""
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True


def _exit_handler(server: uvicorn.Server) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        _ask_exit(server)

    return handler


@contextlib.contextmanager
def _signal_handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
