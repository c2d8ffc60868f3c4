"""What the gateway sends as the request target: the caller's encoding, or a refusal."""

from __future__ import annotations

import pytest

from gateway.targets import route, upstream_target
from shared.problems import ProblemError


@pytest.mark.parametrize(("raw", "expected"), [
    (b"/api/intake/v1/ping", ("intake", b"/v1/ping")),
    (b"/api/workflow/v1", ("workflow", b"/v1")),
    (b"/api/queue/v1/offices/PBD/board/stream", ("queue", b"/v1/offices/PBD/board/stream")),
    (b"/queue/board/PBD", ("queue", b"/pages/board/PBD")),
    (b"/api/intake/v1%2Fping", None),  # the prefix is matched as sent, never decoded
    (b"/api/%69ntake/v1/ping", None),
    (b"/api/intake/v2/ping", None),
    (b"/api/intake", None),
    (b"/api/nosuch/v1/x", None),
    (b"/api/auth/v1/token", None),
])
def test_routes_are_matched_on_the_raw_path(raw: bytes, expected: tuple[str, bytes] | None) -> None:
    assert route(raw) == expected


@pytest.mark.parametrize(("path", "query", "expected"), [
    (b"/v1/procedures%3Fadmin=1", b"", "/v1/procedures%3Fadmin=1"),  # %3F stays in the path
    (b"/v1/a%3Fb", b"c=d", "/v1/a%3Fb?c=d"),
    (b"/v1/procedures/%C4%90", b"", "/v1/procedures/%C4%90"),
    ("/v1/procedures/Đ".encode(), "q=Nguyễn".encode(), "/v1/procedures/%C4%90?q=Nguy%E1%BB%85n"),
    (b"/v1/a%20b", b"q=a+b%20c", "/v1/a%20b?q=a+b%20c"),
    (b"/v1/%", b"", "/v1/%"),
    (b"/v1/a%23b", b"", "/v1/a%23b"),
    (b"/v1/.../a..b/.x/x.", b"q=..", "/v1/.../a..b/.x/x.?q=.."),  # dots, but no dot segment
])
def test_targets_are_forwarded_still_encoded(path: bytes, query: bytes, expected: str) -> None:
    assert upstream_target(path, query) == expected


@pytest.mark.parametrize(("path", "query"), [
    (b"/v1/ping%0d%0aGET%20/v1/dossiers/1", b""),
    (b"/v1/ping%0D%0A", b""),
    (b"/v1/a%00b", b""),
    (b"/v1/a%09b", b""),
    (b"/v1/a%7Fb", b""),
    (b"/v1/a%1fb", b""),
    (b"/v1/a\r\nb", b""),
    (b"/v1/a b", b""),
    (b"/v1/a\tb", b""),
    (b"/v1/a#b", b""),
    (b"/v1/a", b"q=1%0d%0aX-Forwarded-For:%201.2.3.4"),
    (b"/v1/a", b"q=a b"),
    (b"/v1/a", b"q=a#b"),
    (b"/v1/a", b"q=\x00"),
    (b"/v1/../metrics", b""),
    (b"/v1/%2e%2e/metrics", b""),
    (b"/v1/.%2E/metrics", b""),
    (b"/v1/./ping", b""),
    (b"/v1/dossiers/..", b""),
    (b"/pages/../metrics", b""),
])
def test_targets_with_control_characters_spaces_hashes_or_dot_segments_are_refused(path: bytes, query: bytes) -> None:
    with pytest.raises(ProblemError) as refused:
        upstream_target(path, query)
    assert refused.value.status == 400 and refused.value.code == "bad_request"
