"""Where a subscription may send notifications: the address check of its endpoint.

A regional broker must not be made to probe its own network: unless the deployment allows
private endpoints (`CONTESTO_SUBSCRIPTION_PRIVATE_ENDPOINTS`), an endpoint whose host is or
resolves to a loopback, private, link-local or otherwise non-public address is refused, by
the same rule that guards remote @context fetching. Delivery checks the address again when
it connects, so a name that resolves elsewhere later gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from context_broker._context_fetch import FetchAllowList
from context_broker._errors import BadRequestData

_PUBLIC_ONLY = FetchAllowList()
_RESOLVE_TIMEOUT_S = 2.0
_DEFAULT_PORTS = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}


async def check_endpoint_address(uri: str, *, allow_private: bool) -> None:
    """BadRequestData when private endpoints are forbidden and `uri`'s host is not public."""
    if allow_private:
        return
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    refused = BadRequestData(
        f"notification.endpoint.uri: {host} is not a public address; this broker sends "
        "notifications to public endpoints only (CONTESTO_SUBSCRIPTION_PRIVATE_ENDPOINTS)"
    )
    if host == "localhost" or host.endswith(".localhost"):
        raise refused
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            async with asyncio.timeout(_RESOLVE_TIMEOUT_S):
                found = await asyncio.get_running_loop().getaddrinfo(
                    host,
                    parts.port or _DEFAULT_PORTS.get(parts.scheme, 80),
                    type=socket.SOCK_STREAM,
                )
        except (OSError, TimeoutError):
            return  # not resolvable now: delivery checks the address it connects to
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if any(not _PUBLIC_ONLY.admits(address) for address in addresses):
        raise refused
