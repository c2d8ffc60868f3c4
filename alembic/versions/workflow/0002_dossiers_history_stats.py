"""process definitions, dossiers, append-only history, transfers, apologies, notifications, statistics

Revision ID: workflow_0002
Revises: workflow_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "workflow_0002"
down_revision: str | None = "workflow_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "workflow"
TZ = sa.DateTime(timezone=True)
STAFF = ["officer", "supervisor"]

DEFAULT_STEPS = [
    {"code": "receive", "name": "Tiếp nhận hồ sơ", "role": "officer", "share": 0.1},
    {"code": "review", "name": "Thẩm định, xử lý", "role": "officer", "share": 0.6},
    {"code": "approve", "name": "Lãnh đạo phê duyệt", "role": "supervisor", "share": 0.2},
    {"code": "return", "name": "Trả kết quả", "role": "officer", "share": 0.1},
]
DEFAULT_TRANSITIONS = {
    "received": {
        "assign": {"roles": STAFF, "to": "received"},
        "start": {"roles": STAFF, "to": "in_progress", "step": "review"},
        "request_supplement": {"roles": STAFF, "to": "supplement_requested"},
        "transfer": {"roles": STAFF, "to": "in_progress", "step": "review"},
        "reject": {"roles": ["supervisor"], "to": "resolved", "step": "return"},
        "issue_apology": {"roles": STAFF, "to": "received"},
        "withdraw": {"roles": ["citizen", *STAFF], "to": "withdrawn", "step": "return"},
    },
    "in_progress": {
        "assign": {"roles": STAFF, "to": "in_progress"},
        "forward": {"roles": STAFF, "to": "in_progress", "step": "approve"},
        "request_supplement": {"roles": STAFF, "to": "supplement_requested"},
        "transfer": {"roles": STAFF, "to": "in_progress"},
        "approve": {"roles": ["supervisor"], "to": "resolved", "step": "return"},
        "reject": {"roles": ["supervisor"], "to": "resolved", "step": "return"},
        "issue_apology": {"roles": STAFF, "to": "in_progress"},
        "withdraw": {"roles": ["citizen", *STAFF], "to": "withdrawn", "step": "return"},
    },
    "supplement_requested": {
        "receive_supplement": {"roles": [*STAFF, "system"], "to": "in_progress"},
        "expire_supplement": {"roles": ["system"], "to": "resolved", "step": "return"},
        "withdraw": {"roles": ["citizen", *STAFF], "to": "withdrawn", "step": "return"},
    },
    "resolved": {
        "return_result": {"roles": [*STAFF, "system"], "to": "returned", "step": "done"},
    },
    "returned": {},
    "withdrawn": {},
}

APPEND_ONLY = [
    """CREATE FUNCTION workflow.refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'workflow.history is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$""",
    """CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON workflow.history
  FOR EACH ROW EXECUTE FUNCTION workflow.refuse_history_change()""",
    """CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON workflow.history
  FOR EACH STATEMENT EXECUTE FUNCTION workflow.refuse_history_change()""",
]

# Every history row adds what it means to the day's figures, in the same transaction.
STATS_TRIGGER = """
CREATE FUNCTION workflow.count_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  timing text := NEW.data->>'timing';
  received int := (NEW.action = 'receive')::int;
  resolved bool := NEW.to_status = 'resolved' AND NEW.from_status IS DISTINCT FROM 'resolved';
BEGIN
  IF NOT (NEW.action IN ('receive', 'return_result', 'portal_synced', 'rate') OR resolved) THEN
    RETURN NULL;
  END IF;
  INSERT INTO workflow.stats_daily AS s (counted_agency, day, procedure_code, field_code, channel, province,
      received, electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes,
      returned, synced, rating_count, rating_sum)
  VALUES (NEW.counted_agency, (NEW.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, NEW.procedure_code,
      NEW.field_code, NEW.channel, split_part(NEW.counted_agency, '.', 4),
      received, received * coalesce(NEW.data->>'result_delivery' = 'electronic', false)::int,
      coalesce(resolved AND timing = 'early', false)::int, coalesce(resolved AND timing = 'on_time', false)::int,
      coalesce(resolved AND timing = 'late', false)::int,
      CASE WHEN resolved THEN coalesce((NEW.data->>'processing_minutes')::bigint, 0) ELSE 0 END,
      (NEW.action = 'return_result')::int, (NEW.action = 'portal_synced')::int,
      (NEW.action = 'rate')::int,
      CASE WHEN NEW.action = 'rate' THEN coalesce((NEW.data->>'rating')::int, 0) ELSE 0 END)
  ON CONFLICT (counted_agency, day, procedure_code, field_code, channel) DO UPDATE SET
      received = s.received + EXCLUDED.received,
      electronic_result = s.electronic_result + EXCLUDED.electronic_result,
      resolved_early = s.resolved_early + EXCLUDED.resolved_early,
      resolved_on_time = s.resolved_on_time + EXCLUDED.resolved_on_time,
      resolved_late = s.resolved_late + EXCLUDED.resolved_late,
      processing_minutes = s.processing_minutes + EXCLUDED.processing_minutes,
      returned = s.returned + EXCLUDED.returned, synced = s.synced + EXCLUDED.synced,
      rating_count = s.rating_count + EXCLUDED.rating_count, rating_sum = s.rating_sum + EXCLUDED.rating_sum;
  RETURN NULL;
END $$"""
COUNT_TRIGGER = """CREATE TRIGGER history_counts AFTER INSERT ON workflow.history
  FOR EACH ROW EXECUTE FUNCTION workflow.count_history()"""


def _counter(name: str, type_: sa.types.TypeEngine[int] | type[sa.Integer] = sa.Integer) -> sa.Column[int]:
    return sa.Column(name, type_, nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "process_definitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("procedure_code", sa.String(30), nullable=False,
                  comment="'*' is the default for every procedure"),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("steps", JSONB, nullable=False, comment='[{"code", "name", "role", "share"}]'),
        sa.Column("transitions", JSONB, nullable=False, comment='{state: {action: {"roles": [...], "to": state}}}'),
        sa.UniqueConstraint("procedure_code", "effective_from", name="uq_definition_version"),
        schema=S,
    )
    op.execute(sa.text(
        "INSERT INTO workflow.process_definitions (procedure_code, effective_from, name, steps, transitions) "
        "VALUES ('*', DATE '2025-07-01', :name, CAST(:steps AS jsonb), CAST(:transitions AS jsonb))"
    ).bindparams(name="Quy trình chung: tiếp nhận → thẩm định → phê duyệt → trả kết quả",
                 steps=json.dumps(DEFAULT_STEPS, ensure_ascii=False),
                 transitions=json.dumps(DEFAULT_TRANSITIONS)))
    active = "status IN ('received', 'in_progress', 'supplement_requested')"
    op.create_table(
        "dossiers",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("procedure_code", sa.String(30), nullable=False),
        sa.Column("procedure_name", sa.String(400), nullable=False),
        sa.Column("field_code", sa.String(30), nullable=False),
        sa.Column("definition_id", sa.Integer, nullable=False),
        sa.Column("receiving_agency", sa.String(30), nullable=False, comment="counted agency (statistics)"),
        sa.Column("competent_agency", sa.String(30), nullable=False),
        sa.Column("current_agency", sa.String(30), nullable=False, comment="who holds it now (after transfers)"),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("applicant_name", sa.String(200), nullable=False),
        sa.Column("applicant_name_key", sa.String(200), nullable=False, comment="without accents, lower case"),
        sa.Column("applicant_id_number", sa.String(12), nullable=False),
        sa.Column("applicant_phone", sa.String(20)),
        sa.Column("applicant_email", sa.String(200)),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("outcome", sa.String(10), comment="approved | rejected when resolved"),
        sa.Column("outcome_reason", sa.Text),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("step_due_at", TZ),
        sa.Column("assignee", sa.String(100)),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("due_at", TZ, nullable=False, comment="moves with pauses and apologies"),
        sa.Column("original_due_at", TZ, nullable=False,
                  comment="legal due date (moves with pauses, not apologies): on time / late is judged on it"),
        sa.Column("working_minutes", sa.Integer, nullable=False, comment="the procedure's working-time limit"),
        sa.Column("paused_at", TZ),
        sa.Column("paused_minutes", sa.Integer, nullable=False, server_default="0",
                  comment="working time paused so far"),
        sa.Column("supplement_due_at", TZ),
        sa.Column("pending_transfer_id", sa.BigInteger),
        sa.Column("resolved_at", TZ),
        sa.Column("returned_at", TZ),
        sa.Column("result_delivery", sa.String(20), nullable=False),
        sa.Column("delivery_address", JSONB),
        sa.Column("fee", sa.Integer, nullable=False),
        sa.Column("clock_started", sa.Boolean, nullable=False),
        sa.Column("overdue_marked_at", TZ),
        sa.Column("due_soon_warned_at", TZ),
        sa.Column("rating", sa.SmallInteger),
        sa.Column("synced_at", TZ, comment="pushed to the national portal"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("ix_dossiers_worklist", "dossiers", ["current_agency", "due_at", "code"], schema=S)
    op.create_index("ix_dossiers_active_due", "dossiers", ["due_at"], schema=S, postgresql_where=sa.text(active))
    op.create_index("ix_dossiers_counted_active", "dossiers", ["receiving_agency"], schema=S,
                    postgresql_where=sa.text(active))
    op.create_table(
        "history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("actor_role", sa.String(30), nullable=False),
        sa.Column("actor_agency", sa.String(30)),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_status", sa.String(24)),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("step_due_at", TZ),
        sa.Column("note", sa.Text),
        sa.Column("data", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("counted_agency", sa.String(30), nullable=False),
        sa.Column("procedure_code", sa.String(30), nullable=False),
        sa.Column("field_code", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        schema=S,
    )
    op.create_index("ix_history_dossier", "history", ["dossier_code", "id"], schema=S)
    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("part_code", sa.String(60), nullable=False, unique=True, comment="linked record: <origin>-LT<n>"),
        sa.Column("origin_code", sa.String(40), nullable=False),
        sa.Column("from_agency", sa.String(30), nullable=False),
        sa.Column("target", sa.String(60), nullable=False, comment="agency code or outside system code"),
        sa.Column("external", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(10), nullable=False, comment="pending | accepted | rejected"),
        sa.Column("note", sa.Text),
        sa.Column("external_ref", sa.String(100)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("answered_at", TZ),
        schema=S,
    )
    op.create_index("ix_workflow_transfers_origin_code", "transfers", ["origin_code"], schema=S)
    op.create_table(
        "apologies",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("previous_due_at", TZ, nullable=False),
        sa.Column("new_due_at", TZ, nullable=False),
        sa.Column("issued_by", sa.String(100), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        schema=S,
    )
    op.create_index("ix_workflow_apologies_dossier_code", "apologies", ["dossier_code"], schema=S)
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("dossier_code", sa.String(40)),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("template", sa.String(60), nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("sent_at", TZ, nullable=False),
        schema=S,
    )
    op.create_index("ix_workflow_notifications_dossier_code", "notifications", ["dossier_code"], schema=S)
    op.create_table(
        "stats_daily",
        sa.Column("counted_agency", sa.String(30), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True, comment="local (Viet Nam) date of the event"),
        sa.Column("procedure_code", sa.String(30), primary_key=True),
        sa.Column("field_code", sa.String(30), primary_key=True),
        sa.Column("channel", sa.String(10), primary_key=True),
        sa.Column("province", sa.String(10), nullable=False, comment="last part of the agency code, e.g. H29"),
        _counter("received"), _counter("electronic_result"), _counter("resolved_early"),
        _counter("resolved_on_time"), _counter("resolved_late"), _counter("processing_minutes", sa.BigInteger),
        _counter("returned"), _counter("synced"), _counter("rating_count"), _counter("rating_sum"),
        schema=S,
    )
    op.create_index("ix_stats_province_day", "stats_daily", ["province", "day"], schema=S)
    for statement in [*APPEND_ONLY, STATS_TRIGGER, COUNT_TRIGGER]:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS history_counts ON workflow.history")
    op.execute("DROP TRIGGER IF EXISTS history_append_only ON workflow.history")
    op.execute("DROP TRIGGER IF EXISTS history_no_truncate ON workflow.history")
    for table in ("stats_daily", "notifications", "apologies", "transfers", "history", "dossiers",
                  "process_definitions"):
        op.drop_table(table, schema=S)
    op.execute("DROP FUNCTION IF EXISTS workflow.count_history()")
    op.execute("DROP FUNCTION IF EXISTS workflow.refuse_history_change()")
