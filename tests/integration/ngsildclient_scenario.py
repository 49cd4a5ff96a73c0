"""A client application written with ngsildclient 0.5.2 (sync API), run against a broker.

`.venv-ngsildclient/bin/python ngsildclient_scenario.py BROKER_URL TENANT [MODE]` (BROKER_URL
as http://127.0.0.1:PORT). It runs in ngsildclient's own virtualenv (`make ngsildclient-venv`):
ngsildclient pins httpx<0.24 and rich<13, so it is never a dependency of Contesto.
MODE `all` (default) runs every step with the trailing-slash workaround of docs/clients.md;
`create-as-shipped` only creates one entity, without it. It prints one JSON object with what
each step returned; the client's own chatter (batch summaries, logs) goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any
from urllib.parse import urlsplit

from ngsildclient import Client, Entity

ENTITY_TYPE = "AirQualityObserved"


def _station(name: str, pm10: float) -> Entity:
    entity = Entity(ENTITY_TYPE, name)
    entity.prop("pm10", pm10, unitcode="GQ", observedat="2026-01-31T12:00:00Z")
    entity.rel("refDevice", f"urn:ngsi-ld:Device:{name}")
    return entity


def _batch(result: Any) -> dict[str, Any]:
    return {"ok": result.ok, "success": sorted(result.success), "errors": result.errors}


def create_as_shipped(host: str, port: int, tenant: str) -> dict[str, Any]:
    with Client(hostname=host, port=port, tenant=tenant, verbose=False) as client:
        return {"create": client.create(_station("prato-0", 20.0))}


def scenario(host: str, port: int, tenant: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Client(hostname=host, port=port, tenant=tenant, verbose=False) as client:
        out["connected"] = client.is_connected()
        out["vendor"] = [client.broker.vendor.value, client.broker.version]

        first = _station("prato-1", 21.0)
        first.prop("no2", 31.5, unitcode="GQ")
        out["id"] = first.id
        out["create"] = client.create(first)
        out["retrieve"] = client.get(first.id, asdict=True)
        out["exists"] = client.exists(first.id)

        # ngsildclient has no per-attribute call: a batch update of a fragment is its way.
        fragment = Entity(ENTITY_TYPE, "prato-1")
        fragment.prop("pm10", 27.5, unitcode="GQ")
        out["update_attribute"] = _batch(client.update([fragment]))
        out["after_update_attribute"] = client.get(first.id, asdict=True)

        # Client.update(entity) is "exists, delete, create" in ngsildclient.
        first.prop("no2", 35.0, unitcode="GQ")
        out["update_entity"] = client.update(first)
        out["after_update_entity"] = client.get(first.id, asdict=True)

        stations = [_station(f"prato-{n}", 10.0 + n) for n in (1, 2, 3, 4)]
        out["upsert"] = _batch(client.upsert(stations))
        out["query"] = sorted(entity.id for entity in client.query(type=ENTITY_TYPE))
        out["count"] = client.count(type=ENTITY_TYPE)

        out["delete"] = client.delete(first)
        # Batch delete takes Entity objects: with ids it fails on a 204 (docs/clients.md).
        out["batch_delete"] = _batch(client.delete([stations[1]]))
        out["exists_after_delete"] = client.exists(first.id)
        remaining = client.query(type=ENTITY_TYPE)
        out["query_after_delete"] = {entity.id: entity.to_dict() for entity in remaining}
    return out


def main(argv: list[str]) -> int:
    url, tenant, *mode = argv
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    run = create_as_shipped if mode == ["create-as-shipped"] else scenario
    with contextlib.redirect_stdout(sys.stderr):
        results = run(parts.hostname, parts.port, tenant)
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
