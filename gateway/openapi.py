"""Merges the services' OpenAPI documents into one, under their public prefixes.

One document a client generator can take as it is: every operation id and every schema title unique.
A schema that two services (or the gateway) define alike is kept once under its own name; a name two
of them define differently becomes `<Service><Name>` in each, title included. An operation id that
repeats gets its service's prefix. On top of what each service declares, the gateway's own refusals:
401 on every forwarded operation (a token that is sent is checked, public route or not), 403 on those
that need a token, 429 (its rate limits), 502/503/504 (an upstream down or slow).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections import Counter, defaultdict
from typing import Any

import aiohttp

from gateway.public_routes import is_public
from shared.problems import add_problem_schema, declare_problems, operations

PREFIX = {"intake": "/api/intake", "workflow": "/api/workflow", "postal": "/api/postal",
          "queue": "/api/queue"}
COMPONENT_PREFIX = {"gateway": "Gateway", "intake": "Intake", "workflow": "Workflow", "postal": "Postal",
                    "queue": "Queue"}
SCHEMA_REF = "#/components/schemas/"
BEARER: dict[str, list[str]] = {"bearer": []}
GATEWAY_STATUSES = {401, 429, 502, 503, 504}
PATH_PARAM = re.compile(r"\{[^}/]+\}")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(SCHEMA_REF):
                found.add(v[len(SCHEMA_REF):])
            else:
                found |= _refs(v)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _rename_refs(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(SCHEMA_REF):
                name = v[len(SCHEMA_REF):]
                out[k] = SCHEMA_REF + names.get(name, name)
            else:
                out[k] = _rename_refs(v, names)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, names) for v in node]
    return node


def component_names(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per document, each schema's name in the merged document: its own where every document defining
    it defines it alike (and what it refers to is shared alike), else `<Service><Name>`."""
    defined: dict[str, dict[str, Any]] = defaultdict(dict)  # name -> {doc: schema}
    for source, doc in docs.items():
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            defined[name][source] = schema
    clash = {name for name, by_doc in defined.items()
             if len(by_doc) > 1 and len({json.dumps(s, sort_keys=True) for s in by_doc.values()}) > 1}
    changed = True
    while changed:  # alike, but referring to a schema that clashes: the referring ones clash too
        changed = False
        for name, by_doc in defined.items():
            if name not in clash and len(by_doc) > 1 and _refs(next(iter(by_doc.values()))) & clash:
                clash.add(name)
                changed = True
    return {source: {name: COMPONENT_PREFIX[source] + name if name in clash else name
                     for name in doc.get("components", {}).get("schemas", {})}
            for source, doc in docs.items()}


def _unique_titles(schemas: dict[str, Any]) -> None:
    """A schema's title names its class in a generated client: a title used twice becomes its name."""
    titles = Counter(s.get("title") for s in schemas.values() if isinstance(s, dict) and "title" in s)
    for name, schema in schemas.items():
        if isinstance(schema, dict) and (titles[schema.get("title")] > 1 or schema.get("title") is None):
            schema["title"] = name


def _unique_operation_ids(merged: dict[str, Any], owner: dict[tuple[str, str], str]) -> None:
    ops = operations(merged)
    seen = Counter(op.get("operationId") for _, _, op in ops)
    for method, path, op in ops:
        op_id = op.get("operationId")
        if op_id is None or seen[op_id] > 1:
            op["operationId"] = f"{owner[(method, path)]}_{op_id or method + '_' + path}"
    left = Counter(op["operationId"] for _, _, op in ops)
    if dup := [i for i, n in left.items() if n > 1]:
        raise ValueError(f"operation ids still repeat after prefixing: {dup}")


def _gateway_refusals(method: str, path: str, op: dict[str, Any]) -> None:
    sample = PATH_PARAM.sub("x", path)
    statuses = set(GATEWAY_STATUSES)
    if not is_public(method.upper(), sample):
        statuses.add(403)
        op["security"] = [BEARER]
    declare_problems(op, statuses)


def merge(gateway_doc: dict[str, Any], docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = {"gateway": add_problem_schema(copy.deepcopy(gateway_doc))}
    for service, doc in docs.items():
        sources[service] = {**doc, "paths": {PREFIX[service] + path: item
                                             for path, item in doc.get("paths", {}).items()
                                             if path.startswith("/v1")}}
    names = component_names(sources)
    merged: dict[str, Any] = {k: v for k, v in sources["gateway"].items() if k not in ("paths", "components")}
    merged["paths"] = {}
    merged["components"] = copy.deepcopy({k: v for k, v in sources["gateway"].get("components", {}).items()
                                          if k != "schemas"})
    schemas: dict[str, Any] = {}
    tags = {t["name"]: t for t in merged.get("tags", [])}
    owner: dict[tuple[str, str], str] = {}
    for source, doc in sources.items():
        doc = _rename_refs(doc, names[source])
        for path, item in doc.get("paths", {}).items():
            merged["paths"][path] = item
            for method, _, op in operations({"paths": {path: item}}):
                owner[(method, path)] = source
                if source != "gateway":
                    _gateway_refusals(method, path, op)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[names[source][name]] = schema
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
    _unique_titles(schemas)
    _unique_operation_ids(merged, owner)
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    merged["tags"] = list(tags.values())
    merged["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Lấy token tại POST /api/auth/v1/token / Get one from POST /api/auth/v1/token",
    }
    merged["security"] = [BEARER, {}]
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
