"""Whether the store answered its client's last heartbeat, so requests fail at once while
it is down and still wait for it while it is only busy."""

from __future__ import annotations

from pymongo.monitoring import (
    ServerHeartbeatFailedEvent,
    ServerHeartbeatListener,
    ServerHeartbeatStartedEvent,
    ServerHeartbeatSucceededEvent,
)

__all__ = ["HEARTBEAT_MS", "Reachability"]

HEARTBEAT_MS = 1_000
"""How often the API's client checks the store: once it is back, requests find it within
this time."""


class Reachability(ServerHeartbeatListener):
    """Set by the driver's monitor: `down` from a failed heartbeat (the store refused or
    dropped the connection, or did not answer within the connect timeout) until the next
    one succeeds."""

    def __init__(self) -> None:
        self.down = False
        self.heard = False
        """Whether a first heartbeat has ended, either way."""

    def started(self, event: ServerHeartbeatStartedEvent) -> None:
        pass

    def succeeded(self, event: ServerHeartbeatSucceededEvent) -> None:
        self.down = False
        self.heard = True

    def failed(self, event: ServerHeartbeatFailedEvent) -> None:
        self.down = True
        self.heard = True
