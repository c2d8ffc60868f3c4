"""HTTP routes of the Intake (tiếp nhận) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
