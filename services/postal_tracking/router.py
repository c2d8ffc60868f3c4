"""HTTP routes of the Postal tracking (bưu chính công ích) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
