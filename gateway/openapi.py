"""Merges the services' OpenAPI documents into one, under their public prefixes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

PREFIX = {"intake": "/api/intake", "workflow": "/api/workflow", "postal": "/api/postal",
          "queue": "/api/queue"}
COMPONENT_PREFIX = {"intake": "Intake", "workflow": "Workflow", "postal": "Postal",
                    "queue": "Queue"}


def _rename_refs(node: Any, service: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                out[k] = "#/components/schemas/" + COMPONENT_PREFIX[service] + v.rsplit("/", 1)[1]
            else:
                out[k] = _rename_refs(v, service)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, service) for v in node]
    return node


def merge(gateway_doc: dict[str, Any], docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = json.loads(json.dumps(gateway_doc))
    merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    tags = {t["name"]: t for t in merged.get("tags", [])}
    for service, doc in docs.items():
        doc = _rename_refs(doc, service)
        for path, item in doc.get("paths", {}).items():
            if path.startswith("/v1"):
                merged["paths"][PREFIX[service] + path] = item
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[COMPONENT_PREFIX[service] + name] = schema
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
    merged["tags"] = list(tags.values())
    merged["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Lấy token tại POST /api/auth/v1/token / Get one from POST /api/auth/v1/token",
    }
    merged["security"] = [{"bearer": []}, {}]
    return merged


class OpenApiCache:
    def __init__(self, upstreams: dict[str, str], ttl: float = 30.0) -> None:
        self.upstreams = upstreams
        self.ttl = ttl
        self._docs: dict[str, dict[str, Any]] = {}
        self._at = 0.0

    async def docs(self, session: aiohttp.ClientSession) -> dict[str, dict[str, Any]]:
        if time.monotonic() - self._at < self.ttl and len(self._docs) == len(self.upstreams):
            return self._docs

        async def one(name: str, base: str) -> tuple[str, dict[str, Any] | None]:
            try:
                async with session.get(base + "/openapi.json",
                                       timeout=aiohttp.ClientTimeout(total=3)) as resp:
                    return name, (await resp.json()) if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return name, None

        results = await asyncio.gather(*(one(n, b) for n, b in self.upstreams.items()))
        self._docs = {n: d for n, d in results if d is not None}
        self._at = time.monotonic()
        return self._docs
