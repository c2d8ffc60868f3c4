"""Which service a public path belongs to, and the request target it is forwarded with.

The path is forwarded as the caller encoded it (ASGI `raw_path`), so `%0d%0a` stays three characters
on the wire and `%3F` stays in the path; raw bytes beyond ASCII are percent-encoded and the service
answers its own 404. A target with a control character (raw or encoded), a space, a `#` or a dot
segment is refused.
"""

from __future__ import annotations

import re

from shared.problems import ProblemError

SERVICES = {b"intake": "intake", b"workflow": "workflow", b"postal": "postal", b"queue": "queue"}
# A control character, raw or percent-encoded, a raw space or a raw '#': never part of a target.
REFUSED_IN_TARGET = re.compile(rb"[\x00-\x20\x7f#]|%(?:[01][0-9A-Fa-f]|7[Ff])")
NON_ASCII = re.compile(rb"[\x80-\xff]")
# A '.' or '..' segment (RFC 3986 5.2.4), raw or with '%2e': a service, or anything between, that
# resolved it would answer a path outside /v1 (its /metrics, say) that the gateway never routes.
DOT_SEGMENT = re.compile(rb"/(?:\.|%2[eE]){1,2}(?=/|$)")


def route(raw_path: bytes) -> tuple[str, bytes] | None:
    """b"/api/intake/v1/x" -> ("intake", b"/v1/x"); b"/queue/board/1" -> ("queue", b"/pages/board/1")."""
    if raw_path.startswith(b"/api/"):
        service, slash, rest = raw_path[5:].partition(b"/")
        name = SERVICES.get(service)
        if name is not None and slash and (rest == b"v1" or rest.startswith(b"v1/")):
            return name, b"/" + rest
        return None
    if raw_path.startswith(b"/queue/"):
        return "queue", b"/pages/" + raw_path[7:]
    return None


def _percent_encode(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def upstream_target(path: bytes, query: bytes) -> str:
    """The request target for the service, still percent-encoded; 400 for what no target may hold."""
    if REFUSED_IN_TARGET.search(path) is not None or (query and REFUSED_IN_TARGET.search(query) is not None):
        raise ProblemError(
            400, "bad_request",
            "Đường dẫn chứa ký tự không hợp lệ (ký tự điều khiển, khoảng trắng hoặc '#') / "
            "The request target holds a control character, a space or a '#'")
    if DOT_SEGMENT.search(path) is not None:
        raise ProblemError(400, "bad_request",
                           "Đường dẫn chứa đoạn '.' hoặc '..' / The path holds a '.' or '..' segment")
    target = path + b"?" + query if query else path
    if not target.isascii():
        target = NON_ASCII.sub(_percent_encode, target)
    return target.decode("ascii")
