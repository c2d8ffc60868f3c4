"""Standard Webhooks verification (webhook-id, webhook-timestamp, webhook-signature) over raw bytes.

Uses the maintained `standardwebhooks` library for the HMAC-SHA256 check. The five-minute window
is checked here first, so that a replay gets its own answer; then every valid secret of the
partner is tried (two are valid while a secret is being rotated).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from fastapi import Request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.problems import ProblemError

TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 512 * 1024
_TITLE_SIG = ("Chữ ký webhook không hợp lệ", "Invalid webhook signature")


def _refuse(status: int, code: str, detail: str, title: tuple[str, str] = _TITLE_SIG) -> ProblemError:
    return ProblemError(status, code, detail, title=title)


def unknown_partner(partner_code: str) -> ProblemError:
    return _refuse(401, "unknown_partner",
                   f"Không có đối tác bưu chính {partner_code} / Unknown postal partner {partner_code}",
                   title=("Đối tác không xác định", "Unknown partner"))


def check_headers(headers: Mapping[str, str], now: float | None = None) -> tuple[str, int]:
    """The webhook-id and timestamp, or a 400/401 problem (nothing is stored by the caller)."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig = headers.get("webhook-signature")
    if not (msg_id and ts and sig):
        raise _refuse(401, "webhook_signature_missing",
                      "Thiếu webhook-id, webhook-timestamp hoặc webhook-signature / "
                      "webhook-id, webhook-timestamp and webhook-signature headers are required")
    if len(msg_id) > 200 or not msg_id.isprintable():
        raise _refuse(400, "bad_request", "webhook-id không hợp lệ / webhook-id must be 1–200 printable characters",
                      title=("Yêu cầu không hợp lệ", "Bad request"))
    try:
        timestamp = int(ts)
    except ValueError as exc:
        raise _refuse(400, "bad_request", "webhook-timestamp phải là số giây Unix / "
                      "webhook-timestamp must be Unix seconds", title=("Yêu cầu không hợp lệ", "Bad request")) from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise _refuse(401, "webhook_timestamp_out_of_window",
                      "webhook-timestamp lệch quá 5 phút (gửi lại cũ hoặc đồng hồ sai) / "
                      "webhook-timestamp is outside the five-minute window (replay or clock skew)",
                      title=("Webhook hết hạn", "Webhook outside the time window"))
    return msg_id, timestamp


async def read_limited_body(request: Request) -> bytes:
    """The raw body (the signature covers these exact bytes), refused with 413 past MAX_BODY_BYTES."""
    too_big = ProblemError(413, "payload_too_large",
                           f"Nội dung quá {MAX_BODY_BYTES} byte, hãy gửi ít sự kiện hơn mỗi lần / body larger than "
                           f"{MAX_BODY_BYTES} bytes; send fewer events per delivery")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Raises a 401 problem unless one of `secrets` signed id.timestamp.body."""
    wanted = {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
            return
        except (WebhookVerificationError, ValueError, UnicodeDecodeError):
            continue
    raise _refuse(401, "webhook_signature_invalid",
                  "Chữ ký webhook không khớp khóa bí mật của đối tác / "
                  "webhook-signature does not match the partner's secret")


def sign(secret: str, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The headers a partner sends (the simulator, the bench and the tests use this)."""
    when = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature, "content-type": "application/json"}
