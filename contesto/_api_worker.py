"""One API process of `contesto up --workers N`: serves the NGSI-LD API on the listening
socket that `contesto up` bound and passed down, until SIGTERM.

Run as `python -m contesto._api_worker FD READY_FILE`; READY_FILE appears once it serves.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from contesto._settings import StackSettings
from context_broker import BrokerSettings, create_app, json_logging_config

__all__ = ["main"]

# SIGTERM gives the requests under way this long; `contesto up` kills the process after 2.5 s.
_GRACEFUL_S = 1


def main(argv: list[str]) -> None:
    """Serve on the inherited descriptor `argv[1]`, touch `argv[2]` once serving."""
    listening = socket.socket(fileno=int(argv[1]))
    ready_file = Path(argv[2])
    stack = StackSettings()
    log_config: dict[str, Any] = {}
    if stack.log_format == "json":
        log_config["log_config"] = json_logging_config(stack.log_level)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(BrokerSettings()),
            log_level=stack.log_level,
            lifespan="on",
            access_log=stack.access_log,
            timeout_graceful_shutdown=_GRACEFUL_S,
            **log_config,
        )
    )
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(_serve(server, listening, ready_file))


async def _serve(server: uvicorn.Server, listening: socket.socket, ready_file: Path) -> None:
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not (server.started or serving.done()):
        await asyncio.sleep(0.05)
    if server.started:
        ready_file.touch()
    await serving


if __name__ == "__main__":
    main(sys.argv)
