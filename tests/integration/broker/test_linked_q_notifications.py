"""A subscription's `q` through Relationships (clause 4.9 with 4.5.23, the q of a
Subscription in clause 5.2.12): `managedBy{name}=="Acme"` selects the changed entities
whose managedBy targets an entity named Acme, as Query Entities does, for notifications on
change and periodic ones alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import assert_problem, create, entity, new_id, prop, rel
from ._receiver import Receiver
from .test_notifications import subscribe

pytestmark = pytest.mark.integration


def _subscription(uri: str, **members: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "watchedAttributes": ["height"],
        "notification": {"endpoint": {"uri": uri}},
    } | members


async def _set_height(api: httpx.AsyncClient, building: str, height: int) -> None:
    response = await api.patch(f"/entities/{building}/attrs", json={"height": prop(height)})
    assert response.status_code == 204, response.text


async def test_linked_q_notifies_only_entities_whose_target_matches(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Clause 4.9 with 4.5.23 and 5.2.12: the change of a Building managed by Acme is
    notified, the change of one managed by another company is not."""
    acme = await create(api, entity("Company", name=prop("Acme")))
    other = await create(api, entity("Company", name=prop("Other")))
    ours = await create(api, entity("Building", height=prop(1), managedBy=rel(acme)))
    theirs = await create(api, entity("Building", height=prop(1), managedBy=rel(other)))
    await subscribe(api, _subscription(receiver.url + "/linked", q='managedBy{name}=="Acme"'))
    await subscribe(api, _subscription(receiver.url + "/all"))
    await _set_height(api, theirs, 2)
    await _set_height(api, ours, 3)
    await receiver.wait_for("/all", 2)
    linked = await receiver.wait_for("/linked", 1)
    assert [arrival.body["data"][0]["id"] for arrival in receiver.at("/linked")] == [ours]
    assert linked[0].body["data"][0]["height"]["value"] == 3


async def test_linked_q_combines_with_other_terms_and_goes_two_levels(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Clause 4.9 with 4.5.23: a linked term is one term of the q (here AND height>10),
    and a condition may go through a Relationship again."""
    holding = await create(api, entity("Holding", name=prop("Holding SpA")))
    company = await create(api, entity("Company", name=prop("Acme"), ownedBy=rel(holding)))
    building = await create(api, entity("Building", height=prop(1), managedBy=rel(company)))
    q = 'height>10;managedBy{ownedBy{name}}=="Holding SpA"'
    await subscribe(api, _subscription(receiver.url + "/deep", q=q))
    await subscribe(api, _subscription(receiver.url + "/all"))
    await _set_height(api, building, 5)
    await _set_height(api, building, 20)
    await receiver.wait_for("/all", 2)
    arrivals = await receiver.wait_for("/deep", 1)
    assert len(receiver.at("/deep")) == 1
    assert arrivals[0].body["data"][0]["height"]["value"] == 20


async def test_linked_q_follows_the_target_as_it_is_now(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Clause 4.5.23: the linked entity is read when the change is matched, so renaming
    the company changes which Building changes are notified."""
    company = await create(api, entity("Company", name=prop("Other")))
    building = await create(api, entity("Building", height=prop(1), managedBy=rel(company)))
    await subscribe(api, _subscription(receiver.url + "/now", q='managedBy{name}=="Acme"'))
    await subscribe(api, _subscription(receiver.url + "/all"))
    await _set_height(api, building, 2)
    renamed = await api.patch(f"/entities/{company}/attrs", json={"name": prop("Acme")})
    assert renamed.status_code == 204, renamed.text
    await _set_height(api, building, 3)
    await receiver.wait_for("/all", 2)
    arrivals = await receiver.wait_for("/now", 1)
    assert len(receiver.at("/now")) == 1
    assert arrivals[0].body["data"][0]["height"]["value"] == 3


async def test_periodic_subscription_with_linked_q(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Clause 5.8.1 with 4.5.23: a periodic subscription sends the entities its linked q
    selects now."""
    acme = await create(api, entity("Company", name=prop("Acme")))
    other = await create(api, entity("Company", name=prop("Other")))
    ours = await create(api, entity("Building", height=prop(1), managedBy=rel(acme)))
    await create(api, entity("Building", height=prop(1), managedBy=rel(other)))
    body = _subscription(receiver.url + "/periodic", q='managedBy{name}=="Acme"', timeInterval=1)
    del body["watchedAttributes"]
    sub = await subscribe(api, body)
    try:
        arrivals = await receiver.wait_for("/periodic", 1, timeout_s=5.0)
        assert [item["id"] for item in arrivals[0].body["data"]] == [ours]
    finally:
        assert (await api.delete(f"/subscriptions/{sub}")).status_code == 204


async def test_linked_q_round_trips_and_bad_ones_are_400(api: httpx.AsyncClient) -> None:
    """Clause 5.2.12 with 4.9: the q is kept as given; an unclosed brace is 400."""
    q = 'managedBy{name}=="Acme"'
    sub = await subscribe(api, _subscription("http://127.0.0.1:9/n", q=q))
    response = await api.get(f"/subscriptions/{sub}")
    assert response.status_code == 200, response.text
    assert response.json()["q"] == q
    bad = _subscription("http://127.0.0.1:9/n", q='managedBy{name=="Acme"', id=new_id("S"))
    assert_problem(await api.post("/subscriptions", json=bad), 400, "BadRequestData")
