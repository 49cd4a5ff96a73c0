"""Routes of clauses 6.10-6.11: subscriptions (create, query, retrieve, update, delete)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from context_broker._errors import TooManyResults
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import get_call, write_call
from context_broker._http._openapi import (
    CREATE,
    FIND,
    READ,
    REMOVE,
    SUBSCRIPTION,
    SUBSCRIPTION_FRAGMENT,
    WRITE_ONE,
    answer,
    operation,
)
from context_broker._http._params import options_of, page_params
from context_broker._http._query import page_links
from context_broker._http._responses import no_content, representation
from context_broker._subscriptions import Subscriptions, render_subscription
from context_broker._time import utc_now

router = APIRouter(tags=["Subscriptions"])
SUBSCRIPTIONS_PATH = "/ngsi-ld/v1/subscriptions/"


def subscriptions_of(request: Request) -> Subscriptions:
    subscriptions: Subscriptions = request.app.state.subscriptions
    return subscriptions


@router.post(
    "/subscriptions",
    openapi_extra=operation(
        "Create Subscription (clause 6.10.3.1)",
        body=SUBSCRIPTION,
        errors=CREATE,
        answers=answer(201, "Created: the Location header names the new subscription"),
    ),
)
async def create_subscription(request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    created = await subscriptions_of(request).create_subscription(call.tenant, payload, call.terms)
    headers = {"Location": SUBSCRIPTIONS_PATH + quote(created, safe=":")}
    if call.tenant is not None:
        headers["NGSILD-Tenant"] = call.tenant
    return Response(status_code=201, headers=headers)


@router.get(
    "/subscriptions",
    openapi_extra=operation(
        "Query Subscriptions (clause 6.10.3.2)",
        query=("limit", "offset", "count"),
        options=(),
        errors=(*READ, TooManyResults),
        answers=answer(200),
    ),
)
async def query_subscriptions(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    sys_attrs = "sysAttrs" in options_of(request)
    limit, offset, count = page_params(request, deps.settings)
    page = await subscriptions_of(request).query_subscriptions(
        call.tenant, limit=limit, offset=offset, count=count
    )
    now = utc_now()
    body = [render_subscription(doc, call.terms, now, sys_attrs=sys_attrs) for doc in page.docs]
    headers = {"NGSILD-Results-Count": str(page.total)} if page.total is not None else {}
    response = representation(call, body, headers=headers)
    for link in page_links(request, page.more, limit, offset):
        response.headers.append("Link", link)
    return response


@router.get(
    "/subscriptions/{subscription_id:path}",
    openapi_extra=operation(
        "Retrieve Subscription (clause 6.11.3.1)",
        options=(),
        errors=FIND,
        answers=answer(200),
    ),
)
async def retrieve_subscription(subscription_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    sys_attrs = "sysAttrs" in options_of(request)
    doc = await subscriptions_of(request).retrieve_subscription(call.tenant, subscription_id)
    return representation(
        call, render_subscription(doc, call.terms, utc_now(), sys_attrs=sys_attrs)
    )


@router.patch(
    "/subscriptions/{subscription_id:path}",
    openapi_extra=operation(
        "Update Subscription (clause 6.11.3.2)",
        body=SUBSCRIPTION_FRAGMENT,
        errors=WRITE_ONE,
        answers=answer(204),
    ),
)
async def update_subscription(subscription_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, fragment = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    await subscriptions_of(request).update_subscription(
        call.tenant, subscription_id, fragment, call.terms
    )
    return no_content(call)


@router.delete(
    "/subscriptions/{subscription_id:path}",
    openapi_extra=operation(
        "Delete Subscription (clause 6.11.3.3)", errors=REMOVE, answers=answer(204)
    ),
)
async def delete_subscription(subscription_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    await subscriptions_of(request).delete_subscription(call.tenant, subscription_id)
    return no_content(call)
