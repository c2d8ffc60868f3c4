"""HTTP routes of the Queue tickets (xếp hàng, lấy số) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
