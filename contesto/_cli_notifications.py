"""`contesto notifications listen`: an HTTP endpoint that prints the notifications it gets,
for an app developer trying a subscription before their app exists."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import orjson
import typer

notifications_app = typer.Typer(
    help="Notifications of NGSI-LD subscriptions: receive them to see what an app would get.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@notifications_app.command()
def listen(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[
        str, typer.Option(help="Address to listen on (the subscription's endpoint names it).")
    ] = "127.0.0.1",
    count: Annotated[
        int, typer.Option(help="Stop after this many notifications; 0: until Ctrl-C.", min=0)
    ] = 0,
) -> None:
    """Listen for notifications on http://HOST:PORT/ (any path) and print each body on one
    line of JSON, answering 204 No Content. Point a subscription's
    notification.endpoint.uri here, e.g. http://127.0.0.1:8080/notify."""
    try:
        asyncio.run(_listen(host, port, count))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        typer.echo(f"cannot listen on {host}:{port}: {error.strerror or error}", err=True)
        raise typer.Exit(1) from None


async def _listen(host: str, port: int, count: int) -> None:
    from conformance_tests import NotificationReceiver

    async with NotificationReceiver(host, port) as receiver:
        typer.echo(f"listening on {receiver.url}/ (Ctrl-C to stop)", err=True)
        printed = 0
        while count == 0 or printed < count:
            request = await receiver.wait_for(lambda _: True, 3600, start=printed)
            if request is None:
                continue
            printed += 1
            try:
                line = orjson.dumps(orjson.loads(request.body)).decode()
            except orjson.JSONDecodeError:
                line = request.body.decode(errors="replace")
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
