"""The gateway: the only public entry. Auth, rate limits, request ids, routing, merged docs.

`Gateway` is the one place where every request gets its request id, its metrics and its access
log line; proxied paths then go to `Proxy`, the rest to the control app (identity provider,
health, documentation, metrics). Served by plain uvicorn: `uvicorn --factory gateway.app:create_app`.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import structlog
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.idp import KeyStore, build_router
from gateway.openapi import OpenApiCache, merge
from gateway.proxy import Proxy
from gateway.targets import route
from shared.auth import TokenVerifier, bearer_token, check_roles
from shared.db import Database
from shared.docs import mount_docs
from shared.health import check_database
from shared.logging import configure_logging
from shared.middleware import new_request_id, valid_request_id
from shared.problems import ProblemError, install_problem_handlers, problem_response
from shared.settings import Settings, get_settings

DESCRIPTION = """
Cổng API của hệ thống **Một Cửa** (Bộ phận Một cửa) — the public entry of the one-stop
administrative service backend. Lấy token tại `POST /api/auth/v1/token`, rồi gửi
`Authorization: Bearer <token>`.
"""

REQUESTS = Counter("gateway_requests_total", "Requests answered by the gateway", ["service", "status"])
LATENCY = Histogram("gateway_request_duration_seconds", "Time to answer, by service ('gateway': its own routes)",
                    ["service"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
log = structlog.get_logger("gateway")


def build_control_app(settings: Settings, db: Database, proxy: Proxy) -> FastAPI:
    """Routes the gateway answers itself: identity, health, docs, metrics."""
    keystore = KeyStore(db)
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
                async with session.get(base + "/readyz", timeout=aiohttp.ClientTimeout(total=3)) as resp:
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

    metrics_token = settings.metrics_token or None  # unset: admin tokens only

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """For Prometheus (`authorization: {credentials: METRICS_TOKEN}`) or an admin's token."""
        token = bearer_token(request)
        if token is None:
            raise ProblemError(401, "unauthorized", "Cần token để đọc số đo / A bearer token is required",
                               headers={"WWW-Authenticate": 'Bearer realm="mot-cua-metrics"'})
        if metrics_token is None or not hmac.compare_digest(token.encode(), metrics_token.encode()):
            check_roles(await proxy.verifier.verify(token), "admin")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        assert proxy.session is not None
        return JSONResponse(merge(app.openapi(), await openapi_cache.docs(proxy.session)))

    mount_docs(app, "Một Cửa API")

    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, Any]:
        return {"name": "Một Cửa API", "docs": "/docs", "openapi": "/openapi.json",
                "health": "/readyz", "token": "/api/auth/v1/token"}

    return app


class Gateway:
    """Top-level ASGI app: request id, metrics and access log for every request, then routing."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        configure_logging("gateway", self.settings.log_level)
        self.db = Database(self.settings, application_name="motcua-gateway")
        self.verifier = TokenVerifier(
            issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience,
            jwks_loader=self._own_jwks, cache_seconds=self.settings.jwks_cache_seconds,
        )
        self.proxy = Proxy(self.settings, self.verifier)
        self.control_app = build_control_app(self.settings, self.db, self.proxy)
        self.cors = CORSMiddleware(
            self._dispatch, allow_origins=self.settings.cors_origins, allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "ETag", "Retry-After", "Location", "Idempotent-Replayed"],
            max_age=600,
        )
        self.access_log = self.settings.access_log
        self._metrics: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def _own_jwks(self) -> dict[str, Any]:
        store: KeyStore = self.control_app.state.keystore
        await store.load()
        return store.jwks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (websockets are not offered)
            await self.control_app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = None
        from_browser = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"origin":
                from_browser = True
        request_id = incoming if incoming is not None and valid_request_id(incoming) else new_request_id()
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["request_id"] = request_id
        target = route(scope.get("raw_path") or scope["path"].encode())
        status = 500
        try:
            if target is not None and not from_browser:
                status = await self.proxy(scope, receive, send, target, request_id)
            else:
                status = await self._answer_with_id(scope, receive, send, request_id, from_browser)
        finally:
            elapsed = time.perf_counter() - started
            service = target[0] if target is not None else "gateway"
            requests, latency = self._metric(service, status)
            requests.inc()
            latency.observe(elapsed)
            if self.access_log:
                log.info("request", request_id=request_id, method=scope["method"], path=scope["path"],
                         status=status, ms=round(elapsed * 1000, 2))

    def _metric(self, service: str, status: int) -> tuple[Any, Any]:
        """Label lookups cached: they cost more than the increments themselves."""
        key = (service, status)
        found = self._metrics.get(key)
        if found is None:
            found = self._metrics[key] = (REQUESTS.labels(service, status), LATENCY.labels(service))
        return found

    async def _answer_with_id(self, scope: Scope, receive: Receive, send: Send, request_id: str,
                              from_browser: bool) -> int:
        """Own routes and browsers' requests (CORS): the status is read off the answer on its way."""
        status = 500
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if all(name != b"x-request-id" for name, _ in headers):
                    headers.append(id_header)
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        await (self.cors if from_browser else self._dispatch)(scope, receive, send_with_id)
        return status

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = route(scope.get("raw_path") or scope["path"].encode())
        if target is not None:
            await self.proxy(scope, receive, send, target, scope["state"]["request_id"])
        else:
            await self.control_app(scope, receive, send)


def create_app(settings: Settings | None = None) -> ASGIApp:
    return Gateway(settings)
