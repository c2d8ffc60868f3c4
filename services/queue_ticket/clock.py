"""The service's clock: every rule reads "now" here, so tests can move time (monkeypatch `now`)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
