"""Reference data every service reads (schema `core`): agencies, procedures, calendar.

Written only by intake (its admin API and seed); read by all services.
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(schema="core")
