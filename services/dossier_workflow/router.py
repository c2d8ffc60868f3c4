"""HTTP routes of the Dossier workflow (giải quyết) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
