"""structlog JSON logs with the request id bound and personal data masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

CITIZEN_ID = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")
PHONE = re.compile(r"(?<![\d])(\+?84|0)(\d{2})\d{4,5}(\d{3})(?!\d)")


def mask_text(value: str) -> str:
    """012345678901 -> 012******901 ; 0912345678 -> 091*****678."""
    value = CITIZEN_ID.sub(lambda m: f"{m.group(1)}******{m.group(2)}", value)
    return PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}*****{m.group(3)}", value)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_personal_data(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict


def configure_logging(service: str, level: str = "INFO") -> None:
    """Call once per process, before the first log line."""
    lvl = logging.getLevelName(level.upper())
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=lvl)
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "pgqueuer", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            lambda _l, _n, ev: {**ev, "service": service},
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl if isinstance(lvl, int) else 20),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
