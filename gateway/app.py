"""The gateway: the only public entry. Auth, rate limits, request ids, routing, merged docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.idp import KeyStore, build_router
from gateway.openapi import OpenApiCache, merge
from gateway.proxy import Proxy
from shared.auth import TokenVerifier
from shared.db import Database
from shared.docs import mount_docs
from shared.health import check_database
from shared.logging import configure_logging
from shared.middleware import RequestContextMiddleware
from shared.problems import install_problem_handlers, problem_response
from shared.settings import Settings, get_settings

DESCRIPTION = """
Cổng API của hệ thống **Một Cửa** (Bộ phận Một cửa) — the public entry of the one-stop
administrative service backend. Lấy token tại `POST /api/auth/v1/token`, rồi gửi
`Authorization: Bearer <token>`.
"""


def build_control_app(settings: Settings, db: Database, proxy: Proxy) -> FastAPI:
    """Routes the gateway answers itself: identity, health, docs, metrics."""
    keystore = KeyStore(db.engine)
    openapi_cache = OpenApiCache(proxy.upstreams)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await keystore.load()
        await proxy.start()
        yield
        await proxy.stop()
        await db.dispose()

    app = FastAPI(title="Một Cửa API", description=DESCRIPTION, version="1.0.0",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = db
    app.state.keystore = keystore
    install_problem_handlers(app)
    app.include_router(build_router(settings))

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness of the gateway and every upstream")
    async def readyz(request: Request) -> Response:
        assert proxy.session is not None
        session = proxy.session

        async def upstream(name: str, base: str) -> tuple[str, str]:
            try:
                async with session.get(base + "/readyz",
                                       timeout=aiohttp.ClientTimeout(total=3)) as resp:
                    return name, "ok" if resp.status == 200 else f"not ready ({resp.status})"
            except (aiohttp.ClientError, TimeoutError):
                return name, "unreachable"

        results = dict(await asyncio.gather(*(upstream(n, b) for n, b in proxy.upstreams.items())))
        own = await check_database(db, ["auth"])
        results["gateway"] = "ok" if not own else "; ".join(f"{k}: {v}" for k, v in own.items())
        if all(v == "ok" for v in results.values()):
            return JSONResponse({"status": "ready", "checks": results})
        return problem_response(request, 503, "upstream_unavailable",
                                "Một số dịch vụ chưa sẵn sàng / Some services are not ready",
                                extra={"checks": results})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        assert proxy.session is not None
        own = app.openapi()
        return JSONResponse(merge(own, await openapi_cache.docs(proxy.session)))

    mount_docs(app, "Một Cửa API")

    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, Any]:
        return {"name": "Một Cửa API", "docs": "/docs", "openapi": "/openapi.json",
                "health": "/readyz", "token": "/api/auth/v1/token"}

    return app


class Gateway:
    """Top-level ASGI app: proxied paths go straight to the proxy, the rest to the control app."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        configure_logging("gateway", self.settings.log_level)
        self.db = Database(self.settings, application_name="motcua-gateway")
        self.verifier = TokenVerifier(
            issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience,
            jwks_loader=self._own_jwks, cache_seconds=self.settings.jwks_cache_seconds,
        )
        self.proxy = Proxy(self.settings, self.verifier)
        control = build_control_app(self.settings, self.db, self.proxy)
        self.control_app = control
        self.control: ASGIApp = RequestContextMiddleware(
            control, service="gateway", access_log_enabled=self.settings.access_log)

    async def _own_jwks(self) -> dict[str, Any]:
        store: KeyStore = self.control_app.state.keystore
        await store.load()
        return store.jwks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = Proxy.route(scope["path"])
            if target is not None:
                await self.proxy(scope, receive, send, target)
                return
        await self.control(scope, receive, send)


class CorsWhenAsked:
    """CORS handling only for requests that carry an Origin (browsers); others skip it."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=origins, allow_methods=["*"], allow_headers=["*"],
            expose_headers=["X-Request-ID", "ETag", "Retry-After", "Location"], max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(k == b"origin" for k, _ in scope["headers"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> ASGIApp:
    gateway = Gateway(settings)
    return CorsWhenAsked(gateway, gateway.settings.cors_origins)
