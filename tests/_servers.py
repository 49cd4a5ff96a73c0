"""Real servers for tests and benchmarks: an ASGI app served by uvicorn in a background
thread, and plain web sites (remote @contexts, internal services) served by the standard
library's HTTP server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

__all__ = ["ApiProcess", "QuietHandler", "ThreadedServer", "serving", "wait_for_port"]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers a whole body in one call."""

    def send_body(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: the clients of these servers hang up on purpose (timeouts, size bounds),
        and a report printed from a request thread would land in a later test's output."""


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serves `handler` on a free loopback port in a thread; yields `http://127.0.0.1:PORT`."""
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def wait_for_port(host: str, port: int, timeout_s: float = 20.0) -> None:
    """Return once host:port accepts a TCP connection; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing accepts connections on {host}:{port}") from None
            time.sleep(0.05)


class ThreadedServer:
    """Serves `app` with uvicorn on a free loopback port in a thread; a context manager.

    The listening socket is bound before the thread starts, so the port cannot be lost
    to a race; `url` is `http://127.0.0.1:PORT`. Start-up errors (a failing lifespan)
    are raised by `start()`.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        start_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self._config = uvicorn.Config(app, log_level=log_level, lifespan="on")
        self._server = uvicorn.Server(self._config)
        self._host = host
        self._requested_port = port
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the app did not start on {self.url}: {self._error!r} "
                    "(see the uvicorn log above)"
                ) from self._error
            time.sleep(0.02)
        wait_for_port(self._host, self.port, self._start_timeout_s)

    def _run(self) -> None:
        assert self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # SystemExit on a failed lifespan must not vanish
            self._error = exc

    def stop(self) -> None:
        """Ask uvicorn to shut down (lifespan included) and wait for its thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self._stop_timeout_s)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(self._stop_timeout_s)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_API_CHILD = (
    "import sys, uvicorn\n"
    "from context_broker import BrokerSettings, create_app\n"
    "uvicorn.run(create_app(BrokerSettings()), host='127.0.0.1', port=int(sys.argv[1]),"
    " log_level='warning')\n"
)


class ApiProcess:
    """The broker's API in a process of its own (so a test can kill -9 it), configured by
    CONTESTO_ environment variables; `url` is `http://127.0.0.1:PORT`."""

    def __init__(self, env: dict[str, str], log_path: str) -> None:
        self._env = env
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> ApiProcess:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CONTESTO_")}
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _API_CHILD, str(port)],
                env=environment | self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the API process exited: see {self._log_path}")
            try:
                with urllib.request.urlopen(self.url + "/ngsi-ld/v1/types", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"the API process did not answer: see {self._log_path}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ApiProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
