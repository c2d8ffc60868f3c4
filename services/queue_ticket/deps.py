"""Route pieces every queue router uses: path types, roles, the idempotency dependency and helper."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel

from services.queue_ticket.models import idempotency_keys
from services.queue_ticket.schemas import TicketOut
from services.queue_ticket.tickets_repository import NumberAllocator
from shared.auth import Principal, require_roles
from shared.idempotency import Idempotency, idempotency_guard, idempotency_key_header

STAFF = ("officer", "supervisor")
ISSUERS = ("kiosk", "officer", "supervisor", "citizen")
Code = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.-]{1,20}$", examples=["PBD"])]
Staff = Annotated[Principal, Depends(require_roles(*STAFF))]
Admin = Annotated[Principal, Depends(require_roles())]
Supervisor = Annotated[Principal, Depends(require_roles("supervisor"))]
Citizen = Annotated[Principal, Depends(require_roles("citizen"))]
Visitor = Annotated[Principal, Depends(require_roles("citizen", "kiosk", "officer", "supervisor"))]
OptionalKey = Annotated[Idempotency, Depends(idempotency_guard(idempotency_keys, required=False))]

KEY_NOTES = {
    400: "JSON, Idempotency-Key hoặc If-Match sai cú pháp / malformed JSON, Idempotency-Key or If-Match",
    409: "Trạng thái không cho phép (`invalid_state`, `ticket_closed`), hoặc yêu cầu cùng "
         "Idempotency-Key đang xử lý (`idempotency_key_in_use`, thử lại sau Retry-After) / not allowed in this "
         "state, or the same Idempotency-Key is still in flight",
    422: "Dữ liệu không hợp lệ, hoặc Idempotency-Key đã dùng cho yêu cầu khác (`idempotency_key_mismatch`) / "
         "invalid data, or the Idempotency-Key was used for another request",
}
REPLAYED = {"Idempotent-Replayed": {
    "description": "true: câu trả lời đã lưu cho cùng Idempotency-Key, không làm lại / the answer kept for this "
                   "Idempotency-Key; nothing was done again", "schema": {"type": "string"}}}
OPTIONAL_KEY = idempotency_key_header(required=False)


def numbers_of(request: Request) -> NumberAllocator:
    numbers: NumberAllocator | None = getattr(request.app.state, "numbers", None)
    if numbers is None:
        numbers = request.app.state.numbers = NumberAllocator(request.app.state.settings)
    return numbers


async def once(idem: Idempotency, work: Coroutine[Any, Any, dict[str, Any]], status: int = 200,
               model: type[BaseModel] = TicketOut) -> Response:
    """`work` done once per Idempotency-Key: a retry gets the kept answer (the coroutine is then not run)."""
    if (replay := await idem.begin()) is not None:
        work.close()
        return replay
    answer = await work
    return await idem.remember(status, model(**answer).model_dump(mode="json"))
