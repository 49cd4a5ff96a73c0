"""Composition of the broker's FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from context_broker._api_validation import ApiValidation, Policy, policy_of
from context_broker._context_fetch import FetchAllowList, HttpContextFetcher
from context_broker._delivery import (
    HttpSender,
    MqttSender,
    NotificationQueue,
    Notifier,
    NotifierOptions,
    PeriodicSweep,
    QueueingSink,
)
from context_broker._errors import (
    BadRequestData,
    InternalError,
    InvalidRequest,
    NgsiLdError,
    ResourceNotFound,
)
from context_broker._expiry import ExpirySchedule, ExpirySweep
from context_broker._health import Readiness, status_file_reader
from context_broker._hosted_contexts import HostedContexts
from context_broker._http import (
    _admin,
    _batch,
    _contexts,
    _discovery,
    _entities,
    _info,
    _landing,
    _operations,
    _query,
    _subscriptions,
    _temporal,
)
from context_broker._http._auth import ApiKeyGuard
from context_broker._http._control_room import api_prefix, install_control_room
from context_broker._http._deps import Deps
from context_broker._http._hot_path import HotPath
from context_broker._http._openapi import install_api_description
from context_broker._http._params import parse_type_selection
from context_broker._http._request_shape import RequestShape
from context_broker._http._responses import problem_response
from context_broker._http._telemetry import RequestTelemetry
from context_broker._http._validation_report import ValidationReport
from context_broker._http._version import VersionPreference
from context_broker._jsonld import ContextResolver
from context_broker._live_feed import LiveFeed
from context_broker._metrics import BrokerMetrics, StoreLatency
from context_broker._service import Broker
from context_broker._settings import BrokerSettings
from context_broker._store import Store
from context_broker._subscriptions import LiveSubscriptions, Subscriptions
from context_broker._subscriptions._changes import ChangeSink, ChangeSinks
from context_broker._subscriptions._schedule import PeriodicSchedule
from context_broker._temporal import RetentionSweep, TemporalRecorder, TemporalStore
from context_broker._time import utc_now
from datamodels import load_catalogue
from regional_tenants import TenantRegistry

API_PREFIX = "/ngsi-ld/v1"
STORE_FIRST_CONTACT_S = 10.0
"""How long startup waits for the store's first answer; a store that is down is not
waited for longer (requests then answer 503 until it is back)."""
log = logging.getLogger("context_broker")


def create_app(settings: BrokerSettings) -> FastAPI:
    """Build the NGSI-LD API application; the store client opens in the lifespan."""
    metrics = BrokerMetrics()
    live_feed = LiveFeed()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.connect(
            settings.mongo_url,
            settings.database_prefix,
            auto_create=settings.auto_create_tenants,
            journaled=not settings.store_unjournaled_writes_risk_loss,
            budget=settings.query_budget(),
            listeners=[StoreLatency(metrics)],
        )
        metrics.tenant_known = store.is_open
        await store.first_contact(STORE_FIRST_CONTACT_S)
        fetcher = HttpContextFetcher(
            settings.context_fetch_timeout_s,
            settings.context_max_bytes,
            FetchAllowList.parse(settings.context_fetch_allow),
        )
        contexts = HostedContexts(store)
        notifier: Notifier | None = None
        sweep: ExpirySweep | None = None
        retention: RetentionSweep | None = None
        try:
            await contexts.load()
            resolver = ContextResolver(
                fetcher, cache_entries=settings.context_cache_entries, hosted=contexts.lookup
            )
            live = LiveSubscriptions(store, settings.subscription_refresh_ms / 1000)
            queue = NotificationQueue(store.platform)
            await queue.prepare()
            schedule = PeriodicSchedule(store.platform)
            await schedule.prepare()
            sink = QueueingSink(
                live,
                queue,
                resolver.resolve,
                join_bounds=(settings.join_max_level, settings.join_max_entities),
            )
            expiry = ExpirySchedule(store.platform)
            await expiry.prepare()
            registry = TenantRegistry(store.platform, directory=store.directory)
            catalogue = load_catalogue()

            async def load_policy(tenant: str) -> Policy:
                return policy_of(await registry.get_tenant(tenant), catalogue)

            async def record_warning(tenant: str, entity_id: str, texts: list[str]) -> None:
                detail = {"entity": entity_id, "violations": texts}
                await registry.audit(tenant, "api", "entity.validation_warned", detail)

            validation = ApiValidation(
                load_policy, on_violations=metrics.api_violations_found, record=record_warning
            )
            history = TemporalStore(store, settings.temporal_retention_days)
            sinks: list[ChangeSink] = [sink, live_feed]
            if settings.temporal:
                sinks.append(TemporalRecorder(history))
            changes = ChangeSinks(*sinks)
            broker = Broker(store, changes, expiry, validation)
            retention = RetentionSweep(history)
            await retention.start()
            sweep = ExpirySweep(
                broker, expiry, settings.expiry_sweep_ms / 1000, settings.purge_batch
            )
            await sweep.start()
            if settings.notifier_enabled:
                notifier = _notifier(settings, broker, live, queue, schedule, resolver)
                sink.notifier = notifier
                notifier.on_settled = metrics.notification_settled
                await notifier.start()
            app.state.deps = Deps(settings, broker, resolver, contexts)
            app.state.started_at = utc_now()
            app.state.readiness = Readiness(
                lambda: store.reachability.down,
                [status_file_reader(path) for path in settings.ingest_status_paths()],
                settings.readiness_limits(),
            )
            app.state.tenant_registry = registry
            app.state.temporal = history
            app.state.subscriptions = Subscriptions(
                store,
                parse_type_selection,
                allow_private=settings.private_endpoints_allowed(),
                live=live,
                schedule=schedule,
            )
            yield
        finally:
            if retention is not None:
                await retention.stop()
            if sweep is not None:
                await sweep.stop()
            if notifier is not None:
                await notifier.stop()
            await fetcher.aclose()
            await store.close()

    app = FastAPI(
        title="Contesto NGSI-LD context broker",
        summary="ETSI GS CIM 009 API: entities, batch operations, discovery, @context",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = metrics
    app.state.live_feed = live_feed
    for router in (
        _entities.router,
        _query.router,
        _batch.router,
        _discovery.router,
        _info.router,
        _contexts.router,
        _subscriptions.router,
        _temporal.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(_admin.router)
    app.include_router(_landing.router)
    app.include_router(_operations.router)
    install_control_room(app, settings)
    _install_error_handlers(app)
    install_api_description(app, key_required=settings.auth_required)
    # Inside the key guard and the error handler for unexpected errors, like the routes.
    app.add_middleware(HotPath)
    app.add_middleware(ValidationReport)
    if settings.auth_required:
        live_routes = tuple(api_prefix(settings) + name for name in ("boundary", "events"))
        app.add_middleware(ApiKeyGuard, also_guarded=live_routes)
    app.add_middleware(VersionPreference)
    # A request refused for its shape never reaches the key guard's tenant lookup.
    app.add_middleware(RequestShape)
    # Outermost: every answer carries the request id and is counted, refusals included.
    app.add_middleware(RequestTelemetry, metrics=metrics)
    return app


def _notifier(
    settings: BrokerSettings,
    broker: Broker,
    live: LiveSubscriptions,
    queue: NotificationQueue,
    schedule: PeriodicSchedule,
    resolver: ContextResolver,
) -> Notifier:
    """The notifier of this process: HTTP and MQTT senders, periodic subscriptions."""
    http = HttpSender(settings.notification_timeout_s)
    mqtt = MqttSender(settings.notification_timeout_s)
    options = NotifierOptions(
        poll_s=settings.notification_poll_ms / 1000,
        lease_s=settings.notification_lease_s,
        timeout_s=settings.notification_timeout_s,
        retry_base_s=settings.notification_retry_base_s,
        max_attempts=settings.notification_max_attempts,
        endpoint_in_flight=settings.notification_endpoint_in_flight,
        endpoint_backlog=settings.notification_endpoint_backlog,
    )
    periodic = PeriodicSweep(
        broker,
        queue,
        schedule,
        resolver.resolve,
        settings.query_max_limit,
        join_max_level=settings.join_max_level,
    )
    notifier = Notifier(
        live,
        queue,
        {"http": http, "https": http, "mqtt": mqtt, "mqtts": mqtt},
        options,
        periodic,
    )
    periodic.on_queued = notifier.wake
    return notifier


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NgsiLdError)
    async def ngsi_ld_error(request: Request, error: NgsiLdError) -> Response:
        return problem_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        return problem_response(BadRequestData(f"invalid request: {error.errors()}"))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 404:
            problem: NgsiLdError = ResourceNotFound(f"no resource at {request.url.path}")
        else:
            problem = InvalidRequest(str(error.detail))
            problem.status = error.status_code  # type: ignore[misc]
        return problem_response(problem, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(InternalError("the broker failed unexpectedly; see its log"))
