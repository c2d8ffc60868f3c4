"""Tables of schema `queue` (this service is their only writer)."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.idempotency import idempotency_table

metadata = MetaData(schema="queue")
idempotency_keys = idempotency_table(metadata)
