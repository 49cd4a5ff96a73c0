"""A loopback HTTP endpoint that records the notifications it receives."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from _servers import QuietHandler

WAIT_S = 10.0


@dataclass(slots=True, frozen=True)
class Arrival:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """A loopback HTTP receiver: what arrived, by path; each path may answer given statuses
    (the last one repeats) or after a delay."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self.statuses: dict[str, list[int]] = {}
        self.delays: dict[str, float] = {}
        self.url = ""

    def handler(self) -> type[QuietHandler]:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                path = self.path
                with receiver.lock:
                    receiver.arrivals.append(
                        Arrival(path, dict(self.headers.items()), json.loads(body))
                    )
                    statuses = receiver.statuses.get(path, [204])
                    status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                    delay = receiver.delays.get(path, 0.0)
                if delay:
                    time.sleep(delay)
                self.send_body(status, b"")

        return Handler

    def at(self, path: str) -> list[Arrival]:
        with self.lock:
            return [arrival for arrival in self.arrivals if arrival.path == path]

    async def wait_for(self, path: str, count: int, timeout_s: float = WAIT_S) -> list[Arrival]:
        """The arrivals at `path` once there are `count` (fails after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while len(self.at(path)) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{path}: {len(self.at(path))} notifications, expected {count}")
            await asyncio.sleep(0.02)
        return self.at(path)
