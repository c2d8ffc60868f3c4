"""Builds a service's FastAPI app with the shared conventions wired in."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from shared.auth import TokenVerifier, current_principal, optional_principal
from shared.db import Database
from shared.docs import mount_docs
from shared.health import health_router
from shared.hot_routes import add_body_schemas, guard_json_body
from shared.jobs import JobRegistry
from shared.jobs_admin import jobs_admin_router
from shared.logging import configure_logging
from shared.middleware import RequestContextMiddleware
from shared.problems import add_problem_schema, install_problem_handlers
from shared.settings import Settings, get_settings
from shared.waker import JobWaker

Hook = Callable[[FastAPI], Awaitable[None]]


def calm_garbage_collector() -> None:
    """Objects alive after start-up (modules, routes, pools) leave the collector's scans, and it runs
    less often: per request we make short-lived objects that reference counting frees anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _reads_token(dependant: Dependant) -> bool:
    return any(dep.call in (current_principal, optional_principal) or _reads_token(dep)
               for dep in dependant.dependencies)


def authenticated_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of the routes whose dependencies read the bearer token (hot routes, which read it
    by hand, declare their 401 themselves)."""
    return {(method.lower(), ctx.path_format) for ctx in iter_route_contexts(app.routes)
            if isinstance(ctx.original_route, APIRoute) and ctx.path_format and _reads_token(ctx.dependant)
            for method in ctx.methods or ()}


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    histories: list[str],
    settings: Settings | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
    job_registry: JobRegistry | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(service, settings.log_level)

    async def close(app: FastAPI) -> None:
        """Everything the process holds: the shutdown hooks' resources, then the pool."""
        for hook in on_shutdown:
            await hook(app)
        await app.state.db.dispose()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook(app)
        calm_garbage_collector()
        yield
        await close(app)

    app = FastAPI(
        title=title, description=description, version="1.0.0", lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_tags=openapi_tags,
        dependencies=[Depends(guard_json_body)],  # a JSON body parameter: 415 if not JSON, 400 if too deep
    )
    app.state.settings = settings
    app.state.close = close  # tests that drive the app without its lifespan release it with this
    app.state.db = Database(settings, application_name=f"motcua-{service}", waker=JobWaker(settings.asyncpg_dsn))
    app.state.verifier = TokenVerifier(
        issuer=settings.jwt_issuer, audience=settings.jwt_audience, jwks_url=settings.jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
    )
    install_problem_handlers(app)
    app.include_router(health_router(histories))
    for router in routers:
        app.include_router(router)
    if job_registry is not None:
        app.include_router(jobs_admin_router(job_registry))
    build_openapi = app.openapi

    def openapi_with_problem() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schema(add_body_schemas(build_openapi()),
                                                    authenticated=authenticated_operations(app))
        return app.openapi_schema

    app.openapi = openapi_with_problem  # type: ignore[method-assign]
    mount_docs(app, title)
    app.add_middleware(RequestContextMiddleware, service=service,
                       access_log_enabled=settings.access_log)
    return app
