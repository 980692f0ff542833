"""The forgeflow API: one FastAPI app, one Temporal client and one database engine per process."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import document_api_keys, document_idempotency_key
from api.errors import install_error_handlers
from api.idempotency import IdempotencyMiddleware
from api.limits import BodySizeLimitMiddleware, ClientInputMiddleware
from api.observability import ApiMetrics, ObservabilityMiddleware
from api.ratelimit import Gatekeeper
from api.reads import ProjectReads
from api.request_context import RequestIdMiddleware
from api.routes import (
    admin,
    agent,
    bundle,
    docs,
    events,
    files,
    health,
    lifecycle,
    observability,
    projects,
    runs,
    templates,
    updates,
    webhooks,
)
from api.status_cache import StatusCache
from api.status_middleware import StatusCacheMiddleware
from api.streams import StreamHub
from forgeflow import __version__
from forgeflow.settings import Settings, get_settings
from forgeflow.temporal import connect
from forgeflow.tracing import configure_tracing
from store.artifact_stores import open_artifact_store
from store.db import Database


def served_app() -> FastAPI:
    """The app as ``forgeflow api`` serves it, in a process (or uvicorn worker) of its own."""
    return create_app(freeze_startup=True)


def create_app(settings: Settings | None = None, *, freeze_startup: bool = False) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database(settings.resolved_database_url)
        # Per-process memory: identities, rate-limit leases, status bodies (see their modules).
        app.state.gatekeeper = Gatekeeper(app.state.db, settings)
        app.state.reads = ProjectReads(app.state.db, settings.api_read_threads)
        app.state.status_cache = StatusCache(app.state.reads, settings.status_cache_seconds)
        app.state.artifacts = open_artifact_store(settings)
        # Event streams: a cap per key, one poller per followed project (api/streams.py).
        app.state.streams = StreamHub(app.state.db, settings)
        configure_tracing(settings, "forgeflow-api")  # only with FORGEFLOW_OTEL_ENABLED
        # Lazy: the API serves reads while Temporal is down; creates answer 503 until it is back.
        app.state.temporal = await connect(settings, lazy=True)
        if freeze_startup:
            # What startup made (modules, routes, schemas, SQLAlchemy's tables) lives as long
            # as the process: kept out of the collector's full passes, which otherwise walk
            # it all and hold every request for ~100 ms each time (measured under the
            # uncached reads benchmark: ~3 ms each after this; p99 of a status poll 107-109
            # -> 15-20 ms). Only in a process of its own: frozen objects are never freed.
            gc.collect()
            gc.freeze()
        yield
        await app.state.streams.aclose()
        app.state.reads.close()
        app.state.db.dispose()

    app = FastAPI(
        title="forgeflow",
        version=__version__,
        description="Durable project generation on Temporal; the Djass Projects API v1 and more.",
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI and ReDoc from CDNs; api/routes/docs.py serves it locally.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # Innermost: a cached status poll is answered after every check above it, before routing.
    app.add_middleware(StatusCacheMiddleware)
    # Added last is outermost: every response, replays and their errors too, carries the request id.
    app.add_middleware(IdempotencyMiddleware)
    # Between the two: control characters in the query string and a body too deep to parse
    # are refused before the idempotency key hashes anything.
    app.add_middleware(ClientInputMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Inside the request id (logged with it), outside the rest: 413s and replays count too.
    app.state.metrics = ApiMetrics(app)
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    for resource in (projects, lifecycle, agent, runs, events, files):
        app.include_router(resource.router, prefix="/api/v1")
    app.include_router(webhooks.router, prefix="/api/v1")
    app.include_router(admin.router, prefix="/api/v1")
    app.include_router(templates.router, prefix="/api/v1")
    app.include_router(bundle.router, prefix="/api/v1")
    app.include_router(updates.router, prefix="/api/v1")
    app.include_router(health.router)
    app.include_router(docs.router)
    document_idempotency_key(app)
    document_api_keys(app)
    app.include_router(observability.router)
    return app
