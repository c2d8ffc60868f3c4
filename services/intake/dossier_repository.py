"""SQL of dossiers, their daily code counters, counter records (forms 02/03) and supplements.

The submission is the hot path: ONE statement (SQL text) writes it, and submissions arriving together
share one (`group_commit`).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import insert, select, update

from services.intake.catalog_repository import read_alone
from services.intake.group_commit import GroupCommit
from services.intake.models import counter_records, dossiers, supplements
from shared.db import Tx
from shared.jobs import job_insert_sql, mark_enqueued

if TYPE_CHECKING:
    from services.intake.dossier_codes import CodeFormat

DEFAULT_PATTERN = "{agency}-{yymmdd}-{seq}"  # Circular 01/2018 Art. 19


def _padded(number: str) -> str:
    """SQL: the day's number with at least 4 digits (more once past 9,999: the centralised code)."""
    return f"lpad(({number})::text, greatest(4, length(({number})::text)), '0')"


_EVENT_PAYLOAD = """convert_to(jsonb_build_object(
        'data', $25::jsonb || jsonb_build_object('code', d.code), 'request_id', $26::text)::text, 'UTF8')"""
# `postal.dossier_received`: the facts postal keeps to decide who may create the dossier's shipments,
# for a dossier that may travel by post (see `submission.postal_fact`); none for the others.
_POSTAL_PAYLOAD = """convert_to(jsonb_build_object(
        'data', fact || jsonb_build_object('code', code), 'request_id', request_id)::text, 'UTF8')"""
RECEIVE = f"""
WITH n AS (
    INSERT INTO intake.daily_counters AS c (agency_code, day, series, last_number) VALUES ($34, $2, $35, 1)
    ON CONFLICT (agency_code, day, series) DO UPDATE SET last_number = c.last_number + 1
    RETURNING last_number
), d AS (
    INSERT INTO intake.dossiers (code, procedure_code, procedure_version_id, receiving_agency,
        competent_agency, channel, status, applicant, applicant_id_number, submitted_by, submitted_role,
        documents, number_of_sets, result_delivery, delivery_address, fee, received_at, due_at,
        clock_started, queue_ticket_id, notes, receiver_name, receiver_title, representative)
    SELECT $3 || {_padded("n.last_number")} || $23, $4, $5, $1, $6, $7, $8,
        $9::jsonb, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb, $17, $18, $19, $20, $21, $22, $36, $37,
        $38::jsonb
    FROM n
    RETURNING code
), answer AS (
    SELECT d.code, ($24::jsonb || jsonb_build_object(
        'code', d.code, 'receipt_url', '/api/intake/v1/dossiers/' || d.code || '/receipt'))::text AS body
    FROM d
), {job_insert_sql("job", "d", "'dossier.received'", _EVENT_PAYLOAD)},
linked AS (  -- the files its documents name: the staff of its agencies may read them
    INSERT INTO intake.file_links (file_id, dossier_code)
    SELECT DISTINCT f.id, d.code FROM d CROSS JOIN unnest($33::text[]) AS f(id)
), postal_fact AS (
    SELECT d.code, $32::jsonb AS fact, $26::text AS request_id FROM d WHERE $32::jsonb IS NOT NULL
), {job_insert_sql("postal_job", "postal_fact", "'postal.dossier_received'", _POSTAL_PAYLOAD)},
kept AS (
    INSERT INTO intake.idempotency_keys (scope, key, method, path, fingerprint, status, body, content_type)
    SELECT $27, $28, $29, $30, $31, 201, convert_to(answer.body, 'UTF8'), 'application/json' FROM answer
)
SELECT answer.code, answer.body FROM answer
"""


def code_parts(pattern: str, agency_code: str, day: date, owner: str = "") -> tuple[str, str]:
    """The text before and after the daily number, e.g. ('000.00.21.H29-261124-', '')."""
    before, found, after = pattern.partition("{seq}")
    if not found:
        raise ValueError("DOSSIER_CODE_PATTERN must contain {seq}")
    fields = {"agency": agency_code, "yymmdd": f"{day:%y%m%d}", "yyyymmdd": f"{day:%Y%m%d}", "owner": owner}
    return before.format(**fields), after.format(**fields)


Entry = dict[str, Any]  # one submission's write: see `receive`


async def receive(tx: Tx, agency_code: str, day: date, row: dict[str, Any], numbering: CodeFormat, *,
                  answer: dict[str, Any], event: dict[str, Any], request_id: str | None,
                  idempotency: tuple[str, str, str, str, str],
                  postal: dict[str, Any] | None = None) -> tuple[str, str]:
    """ONE statement: the next number of the day in `numbering`'s counter (see `dossier_codes`), the
    dossier, its `dossier.received` job and the kept answer for the Idempotency-Key (`idempotency`:
    scope, key, method, path, fingerprint) all commit together; with `postal` (facts for a dossier
    that may travel by post), a `postal.dossier_received` job too.

    The counter row stays locked until that commit, so codes have no gaps and no duplicates.
    The daily limit is a CHECK on the counter and a used key is the key table's primary key:
    either one fails the whole statement (asyncpg raises), leaving nothing written.
    Submissions arriving together share one statement (`group_commit`, on the leader's `Tx`, with no
    BEGIN); when a transaction is open already (a test's, or one the request's reads began) the
    statement runs alone in a savepoint of it. Returns the code and the answer's JSON text (what the
    caller sends and a retry replays).
    """
    scope, key, method, path, fingerprint = idempotency
    entry: Entry = {**row, "agency_code": agency_code, "day": day, "prefix": numbering.prefix,
                    "suffix": numbering.suffix, "counter_agency": numbering.counter_agency, "series": numbering.series,
                    "answer": answer, "event": event, "request_id": request_id, "scope": scope, "key": key,
                    "method": method, "path": path, "fingerprint": fingerprint, "postal": postal,
                    "file_ids": sorted({f for d in row["documents"] for f in d.get("file_ids") or []})}
    if tx.conn.is_in_transaction():
        async with (await tx.connection()).transaction():
            code, body = await _receive_one(tx, entry)
    else:
        code, body = await _group().run(tx, entry)
    mark_enqueued(tx)
    return code, body


async def _receive_one(tx: Tx, e: Entry) -> tuple[str, str]:
    rows = await tx.statement(
        RECEIVE, e["agency_code"], e["day"], e["prefix"], e["procedure_code"],
        e["procedure_version_id"], e["competent_agency"], e["channel"], e["status"],
        json.dumps(e["applicant"]), e["applicant_id_number"], e["submitted_by"], e["submitted_role"],
        json.dumps(e["documents"]), e["number_of_sets"], e["result_delivery"],
        json.dumps(e["delivery_address"]) if e["delivery_address"] is not None else None,
        e["fee"], e["received_at"], e["due_at"], e["clock_started"], e["queue_ticket_id"], e["notes"],
        e["suffix"], json.dumps(e["answer"], ensure_ascii=False),
        json.dumps(e["event"], default=str, ensure_ascii=False),
        e["request_id"], e["scope"], e["key"], e["method"], e["path"], e["fingerprint"],
        json.dumps(e["postal"], default=str, ensure_ascii=False) if e.get("postal") is not None else None,
        e["file_ids"], e["counter_agency"], e["series"], e.get("receiver_name"), e.get("receiver_title"),
        json.dumps(e["representative"], ensure_ascii=False) if e.get("representative") is not None else None,
    )
    return str(rows[0]["code"]), str(rows[0]["body"])


_FIELDS = """ord int, agency_code text, day date, prefix text, suffix text, procedure_code text,
    procedure_version_id int, competent_agency text, channel text, status text, applicant jsonb,
    applicant_id_number text, submitted_by text, submitted_role text, documents jsonb, number_of_sets int,
    result_delivery text, delivery_address jsonb, fee int, received_at timestamptz, due_at timestamptz,
    clock_started boolean, queue_ticket_id text, notes text, answer jsonb, event jsonb, request_id text,
    scope text, key text, method text, path text, fingerprint text, postal jsonb,
    file_ids jsonb, counter_agency text, series text, receiver_name text, receiver_title text,
    representative jsonb"""
_GROUP_EVENT = """convert_to(jsonb_build_object('data', answer.event || jsonb_build_object('code', answer.code),
        'request_id', answer.request_id)::text, 'UTF8')"""
RECEIVE_MANY = f"""
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x({_FIELDS})
), n AS (  -- counter rows locked in one order: two groups never wait on each other in a cycle
    INSERT INTO intake.daily_counters AS c (agency_code, day, series, last_number)
    SELECT counter_agency, day, series, count(*) FROM input GROUP BY counter_agency, day, series
    ORDER BY counter_agency, day, series
    ON CONFLICT (agency_code, day, series) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
    RETURNING agency_code AS counter_agency, day, series, last_number
), numbered AS (
    SELECT i.*, i.prefix || {_padded("n.last_number - count(*) OVER w + row_number() OVER (w ORDER BY i.ord)")}
        || i.suffix AS code
    FROM input i JOIN n USING (counter_agency, day, series)
    WINDOW w AS (PARTITION BY i.counter_agency, i.day, i.series)
), d AS (
    INSERT INTO intake.dossiers (code, procedure_code, procedure_version_id, receiving_agency,
        competent_agency, channel, status, applicant, applicant_id_number, submitted_by, submitted_role,
        documents, number_of_sets, result_delivery, delivery_address, fee, received_at, due_at,
        clock_started, queue_ticket_id, notes, receiver_name, receiver_title, representative)
    SELECT code, procedure_code, procedure_version_id, agency_code, competent_agency, channel, status,
        applicant, applicant_id_number, submitted_by, submitted_role, documents, number_of_sets,
        result_delivery, delivery_address, fee, received_at, due_at, clock_started, queue_ticket_id, notes,
        receiver_name, receiver_title, representative
    FROM numbered ORDER BY ord
    RETURNING code
), answer AS (
    SELECT nb.ord, nb.code, nb.event, nb.request_id, nb.scope, nb.key, nb.method, nb.path, nb.fingerprint,
        nb.postal,
        (nb.answer || jsonb_build_object('code', nb.code,
            'receipt_url', '/api/intake/v1/dossiers/' || nb.code || '/receipt'))::text AS body
    FROM numbered nb JOIN d USING (code)
), {job_insert_sql("job", "answer", "'dossier.received'", _GROUP_EVENT)},
linked AS (
    INSERT INTO intake.file_links (file_id, dossier_code)
    SELECT DISTINCT f.id, nb.code FROM numbered nb JOIN d USING (code)
    CROSS JOIN LATERAL jsonb_array_elements_text(nb.file_ids) AS f(id)
), postal_fact AS (
    SELECT code, postal AS fact, request_id FROM answer WHERE postal IS NOT NULL
), {job_insert_sql("postal_job", "postal_fact", "'postal.dossier_received'", _POSTAL_PAYLOAD)},
kept AS (
    INSERT INTO intake.idempotency_keys (scope, key, method, path, fingerprint, status, body, content_type)
    SELECT scope, key, method, path, fingerprint, 201, convert_to(body, 'UTF8'), 'application/json' FROM answer
)
SELECT ord, code, body FROM answer ORDER BY ord
"""


async def _receive_many(tx: Tx, entries: list[Entry]) -> list[tuple[str, str]]:
    """The same write as `_receive_one` for a group, in one statement (numbers in the group's order)."""
    rows = await tx.statement(RECEIVE_MANY, orjson.dumps(
        [{**e, "ord": i} for i, e in enumerate(entries)], default=str).decode())
    if len(rows) != len(entries):
        raise RuntimeError(f"group write returned {len(rows)} rows for {len(entries)} entries")
    return [(str(r["code"]), str(r["body"])) for r in rows]


_GROUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit[Entry, tuple[str, str]]] = (
    weakref.WeakKeyDictionary())


def _group() -> GroupCommit[Entry, tuple[str, str]]:
    """One group per event loop (one per process when served)."""
    loop = asyncio.get_running_loop()
    group = _GROUPS.get(loop)
    if group is None:
        group = _GROUPS[loop] = GroupCommit(_receive_one, _receive_many)
    return group


async def get_dossier(tx: Tx, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    """The dossier's row; `lock` holds it until the transaction ends (else one read with no BEGIN)."""
    if lock:
        row = await tx.fetchrow(select(dossiers).where(dossiers.c.code == code).with_for_update())
    else:
        row = await read_alone(tx, "SELECT * FROM intake.dossiers WHERE code = $1", code)
    return dict(row) if row else None


async def start_clock(tx: Tx, code: str, due_at: datetime) -> None:
    await tx.execute(update(dossiers).where(dossiers.c.code == code).values(clock_started=True, due_at=due_at))


async def await_supplement(tx: Tx, code: str, due_at: datetime, documents: list[str]) -> None:
    await tx.execute(update(dossiers).where(dossiers.c.code == code).values(
        supplement_due_at=due_at, supplement_documents=documents))


async def add_supplement(tx: Tx, code: str, received_at: datetime, received_by: str,
                         documents: list[dict[str, Any]], note: str | None) -> None:
    """The documents handed in; the dossier waits for no more."""
    await tx.execute(insert(supplements).values(dossier_code=code, received_at=received_at,
                                                received_by=received_by, documents=documents, note=note))
    file_ids = sorted({f for d in documents for f in d.get("file_ids") or []})
    if file_ids:
        await tx.execute("INSERT INTO intake.file_links (file_id, dossier_code) SELECT unnest($1::text[]), $2 "
                         "ON CONFLICT DO NOTHING", file_ids, code)
    await tx.execute(update(dossiers).where(dossiers.c.code == code).values(supplement_due_at=None))


async def insert_counter_record(tx: Tx, row: dict[str, Any]) -> int:
    record_id: int = await tx.fetchval(insert(counter_records).values(**row).returning(counter_records.c.id))
    return record_id


async def get_counter_record(tx: Tx, record_id: int) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(counter_records).where(counter_records.c.id == record_id))
    return dict(row) if row else None
