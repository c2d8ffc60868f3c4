"""Service-index figures (Decision 766) for supervisors and government systems, and the public look-up limits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from services.dossier_workflow import service_index, stats_repository
from shared.auth import Principal
from shared.db import Tx
from shared.problems import ProblemError

_limiter = MovingWindowRateLimiter(MemoryStorage())
PER_CLIENT = parse("30/minute")
PER_CODE_AND_CLIENT = parse("10/minute")
WRONG_PER_CODE = parse("50/hour")  # wrong guesses on one code, from every client together
ONE_WRONG = parse("1/hour")  # has this client guessed wrong on this code?
TOO_MANY = ("Tra cứu quá nhiều lần, thử lại sau một phút / too many look-ups, retry in a minute")


def client_of(request: Request) -> str:
    """The caller's address as the gateway saw it (the last X-Forwarded-For hop), else the peer's."""
    forwarded = request.headers.get("x-forwarded-for", "")
    return forwarded.split(",")[-1].strip() or (request.client.host if request.client else "?")


def public_rate_limit(client: str, code: str) -> None:
    """Guessing the phone digits of one code, or sweeping codes from one client, is slowed down. Limits are
    per client (and per code and client), so strangers guessing wrong never lock the owner out; the cap on a
    code's wrong guesses from everyone applies only to clients that have guessed wrong on it themselves."""
    if not (_limiter.hit(PER_CLIENT, "client", client) and _limiter.hit(PER_CODE_AND_CLIENT, "code", code, client)):
        raise ProblemError(429, "rate_limited", TOO_MANY, headers={"Retry-After": "60"})
    guessed_wrong = not _limiter.test(ONE_WRONG, "wrong", code, client)
    if guessed_wrong and not _limiter.test(WRONG_PER_CODE, "wrong", code):
        raise ProblemError(429, "rate_limited", TOO_MANY, headers={"Retry-After": "60"})


def wrong_guess(client: str, code: str) -> None:
    """Counts a look-up that matched no dossier, for this client and for the code."""
    _limiter.hit(ONE_WRONG, "wrong", code, client)
    _limiter.hit(WRONG_PER_CODE, "wrong", code)


SATISFIED_SCORES = (4, 5)
"""Scores counted as satisfied ("hài lòng" and "rất hài lòng" on the 1–5 scale). An assumption: Decision 766
counts the share of satisfied ratings, and no text maps a five-point scale to it; the aggregate keeps one count
per score, so changing this needs no rebuild."""


ZERO_SUMS = (*stats_repository.STAT_COLUMNS, "received_counter", "received_online", "received_postal",
             *(f"received_online_{level}" for level in stats_repository.ONLINE_LEVELS))
NO_PAYMENT_DATA = "Chưa có dữ liệu thanh toán / no payment data yet"
"""Why the online payment share is null: the system records no payment yet (a 0 would claim none was made)."""


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def shape(row: dict[str, Any]) -> dict[str, Any]:
    """Raw sums to the figures of the service index (Decision 766/QĐ-TTg). Every share is a part over a whole
    counted from the same events, so none can exceed 1."""
    resolved = row["resolved_early"] + row["resolved_on_time"] + row["resolved_late"]
    satisfied = sum(row[f"rating_{s}"] for s in SATISFIED_SCORES)
    return {
        "group": row.get("group"), "received": row["received"], "received_counter": row["received_counter"],
        "received_online": row["received_online"], "received_postal": row["received_postal"],
        "resolved": resolved, "resolved_early": row["resolved_early"], "resolved_on_time": row["resolved_on_time"],
        "resolved_late": row["resolved_late"],
        "on_time_rate": _share(row["resolved_early"] + row["resolved_on_time"], resolved),
        "average_processing_hours": round(row["processing_minutes"] / resolved / 60, 2) if resolved else None,
        **dict.fromkeys(stats_repository.IN_PROGRESS_FIGURES),
        "returned": row["returned"], "share_online": _share(row["received_online"], row["received"]),
        "share_postal": _share(row["received_postal"], row["received"]),
        "electronic_results": row["electronic_result"],
        "share_electronic_result": _share(row["electronic_result"], row["returned"]),
        "synced": row["synced"], "share_synced": _share(row["synced"], row["received"]),
        "synced_on_time": row["synced_on_time"], "share_synced_on_time": _share(row["synced_on_time"], row["received"]),
        "rating_count": row["rating_count"],
        "average_rating": round(row["rating_sum"] / row["rating_count"], 2) if row["rating_count"] else None,
        "rating_satisfied": satisfied, "satisfaction_rate": _share(satisfied, row["rating_count"]),
        "digitised": row["received_digitised"], "digitisation_rate": _share(row["received_digitised"], row["received"]),
        "received_level_full": row["received_level_full"], "received_level_partial": row["received_level_partial"],
        "received_online_full": row["received_online_full"],
        "received_online_partial": row["received_online_partial"],
        "share_online_full": _share(row["received_online_full"], row["received_level_full"]),
        "share_online_partial": _share(row["received_online_partial"], row["received_level_partial"]),
        "online_payments": None, "share_online_payment": None, "online_payment_note": NO_PAYMENT_DATA,
        "accepted": row["accepted"], "accepted_late": row["accepted_late"],
        "share_accepted_late": _share(row["accepted_late"], row["accepted"]),
    }


def catalog_figures(counts: dict[str, int] | None) -> dict[str, Any]:
    """Procedures offered online, from the catalog's counts (stats_repository.procedures_online)."""
    c = counts or {"procedures": 0, **{f"procedures_online_{lv}": 0 for lv in stats_repository.ONLINE_LEVELS}}
    full, partial = c["procedures_online_full"], c["procedures_online_partial"]
    return {"procedures": c["procedures"], "procedures_online_full": full, "procedures_online_partial": partial,
            "share_procedures_online": _share(full + partial, c["procedures"]),
            "share_procedures_online_full": _share(full, c["procedures"]),
            "share_procedures_online_partial": _share(partial, c["procedures"])}


def with_points(row: dict[str, Any]) -> dict[str, Any]:
    parts = service_index.criteria(row)
    points, known_max = service_index.index_points(parts)
    return {**row, "criteria": parts, "index_points": points, "index_known_max_points": known_max}


async def figures(tx: Tx, who: Principal, agency_code: str | None, province: str | None,
                  start: date, end: date, group_by: str | None, now: datetime) -> list[dict[str, Any]]:
    if who.role == "supervisor":
        if province or (agency_code and agency_code != who.agency_code):
            raise ProblemError(403, "forbidden", "Lãnh đạo chỉ xem số liệu của cơ quan mình / a supervisor sees "
                               "only their own agency's figures")
        agency_code = who.agency_code
    sums = await stats_repository.stats_from_aggregate(tx, agency_code, province, start, end, group_by)
    rows = [shape(r) for r in sums]
    if group_by != "month":  # a count of now: it belongs to no month
        running = await stats_repository.in_progress_counts(tx, agency_code, province, group_by, now)
        # a group with dossiers in progress and no event in the period still shows them
        seen = {r["group"] for r in rows}
        rows += [shape({"group": g, **dict.fromkeys(ZERO_SUMS, 0)}) for g in running.keys() - seen]
        rows.sort(key=lambda r: r["group"] or "")
        for row in rows:
            row.update(running.get(row["group"], dict.fromkeys(stats_repository.IN_PROGRESS_FIGURES, 0)))
    catalog = await stats_repository.procedures_online(tx, end, group_by)
    by_group = group_by in ("field", "procedure")
    return [with_points({**row, **catalog_figures(catalog.get(row["group"] if by_group else None))})
            for row in rows]
