"""Routes the gateway forwards without a token. Everything else needs a valid bearer token.

Each entry is (method, regex over the public path). Services still apply their own rules.
"""

from __future__ import annotations

import re

PUBLIC_ROUTES: list[tuple[str, str]] = [
    ("GET", r"/api/intake/v1/procedures(/[^/]+)?"),
    ("GET", r"/api/intake/v1/agencies(/[^/]+)?"),
    ("GET", r"/api/intake/v1/calendar/due"),
    ("GET", r"/api/workflow/v1/public/.+"),
    ("POST", r"/api/postal/v1/partners/[^/]+/events"),
    ("GET", r"/api/queue/v1/offices/[^/]+/(board|board/stream|slots|categories)"),
    ("GET", r"/queue/.*"),
]

_COMPILED = [(m, re.compile(p + r"/?")) for m, p in PUBLIC_ROUTES]


def is_public(method: str, path: str) -> bool:
    method = "GET" if method == "HEAD" else method
    return any(m == method and rx.fullmatch(path) for m, rx in _COMPILED)
