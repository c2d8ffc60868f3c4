"""Postal test fixtures: the in-process app bound to the rolled-back connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.postal_tracking import events_service
from services.postal_tracking.app import create_app
from tests.conftest import app_client_factory

client = app_client_factory(create_app)


@pytest.fixture(autouse=True)
def fresh_secret_cache() -> Iterator[None]:
    """Webhook secrets are cached per process for a few seconds; tests change them freely."""
    events_service.forget_cached_secrets()
    yield
    events_service.forget_cached_secrets()
