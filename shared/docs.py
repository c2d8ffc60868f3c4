"""Swagger UI served from the installed swagger-ui-bundle package: no CDN at run time."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path


def mount_docs(app: FastAPI, title: str, openapi_url: str = "/openapi.json",
               prefix: str = "") -> None:
    app.mount(f"{prefix}/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{prefix}{openapi_url}", title=title,
            swagger_js_url=f"{prefix}/docs-static/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}/docs-static/swagger-ui.css",
            swagger_favicon_url=f"{prefix}/docs-static/favicon-32x32.png",
        )
