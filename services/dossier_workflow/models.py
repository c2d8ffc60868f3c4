"""Tables of schema `workflow` (this service is their only writer).

`history` is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and feeds `stats_daily`
through another trigger, so the figures are always the history counted.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.idempotency import idempotency_table

metadata = MetaData(schema="workflow")
idempotency_keys = idempotency_table(metadata)

process_definitions = Table(
    "process_definitions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("procedure_code", String(30), nullable=False, comment="'*' is the default for every procedure"),
    Column("effective_from", Date, nullable=False),
    Column("name", String(200), nullable=False),
    Column("steps", JSONB, nullable=False, comment='[{"code", "name", "role", "share"}]'),
    Column("transitions", JSONB, nullable=False, comment='{state: {action: {"roles": [...], "to": state}}}'),
    UniqueConstraint("procedure_code", "effective_from", name="uq_definition_version"),
)

ACTIVE_STATUSES = ("received", "in_progress", "supplement_requested")

dossiers = Table(
    "dossiers", metadata,
    Column("code", String(40), primary_key=True),
    Column("procedure_code", String(30), nullable=False),
    Column("procedure_name", String(400), nullable=False),
    Column("field_code", String(30), nullable=False),
    Column("definition_id", Integer, nullable=False),
    Column("receiving_agency", String(30), nullable=False, comment="counted agency (statistics)"),
    Column("competent_agency", String(30), nullable=False),
    Column("current_agency", String(30), nullable=False, comment="who holds it now (after transfers)"),
    Column("channel", String(10), nullable=False),
    Column("applicant_name", String(200), nullable=False),
    Column("applicant_name_key", String(200), nullable=False, comment="without accents, lower case"),
    Column("applicant_id_number", String(12), nullable=False),
    Column("applicant_phone", String(20)),
    Column("applicant_email", String(200)),
    Column("status", String(24), nullable=False),
    Column("outcome", String(10), comment="approved | rejected when resolved"),
    Column("outcome_reason", Text),
    Column("step", String(40), nullable=False),
    Column("step_due_at", DateTime(timezone=True)),
    Column("assignee", String(100)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True),
           comment="moves with pauses, apologies and verification; null until the clock starts"),
    Column("original_due_at", DateTime(timezone=True),
           comment="legal due date (moves with pauses and verification, not apologies): on time / late is judged "
                   "on it; null until the clock starts"),
    Column("time_limit", JSONB, comment="the limit for this dossier's channel: {value, unit, verification_extension}"),
    Column("verification_days", Integer, nullable=False, server_default="0",
           comment="working days added for verification so far (at most time_limit.verification_extension)"),
    Column("acceptance_alert_at", DateTime(timezone=True), comment="online: when the one-stop officers are alerted"),
    Column("acceptance_due_at", DateTime(timezone=True), comment="online: acceptance (or a supplement request) due"),
    Column("acceptance_alerted_at", DateTime(timezone=True)),
    Column("accepted_at", DateTime(timezone=True), comment="online: the officer's acceptance (the clock starts)"),
    Column("working_minutes", Integer, nullable=False, comment="the procedure's working-time limit"),
    Column("paused_at", DateTime(timezone=True)),
    Column("paused_minutes", Integer, nullable=False, server_default="0", comment="working time paused so far"),
    Column("supplement_due_at", DateTime(timezone=True)),
    Column("pending_transfer_id", BigInteger),
    Column("resolved_at", DateTime(timezone=True)),
    Column("returned_at", DateTime(timezone=True)),
    Column("result_delivery", String(20), nullable=False),
    Column("delivery_address", JSONB),
    Column("fee", Integer, nullable=False),
    Column("clock_started_at", DateTime(timezone=True), comment="when the time limit started to run (null: not yet)"),
    Column("clock_started", Boolean, Computed("clock_started_at IS NOT NULL", persisted=True), nullable=False),
    Column("overdue_marked_at", DateTime(timezone=True)),
    Column("due_soon_warned_at", DateTime(timezone=True)),
    Column("rating", SmallInteger),
    Column("synced_at", DateTime(timezone=True), comment="pushed to the national portal"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("applicant_address", String(400), comment="the applicant's address line (form 07)"),
    Column("number_of_sets", Integer, comment="sets handed in (số lượng hồ sơ, form 07)"),
    Index("ix_dossiers_worklist", "current_agency", "due_at", "code"),
    Index("ix_dossiers_active_due", "due_at", postgresql_where=text(
        "status IN ('received', 'in_progress', 'supplement_requested')")),
    Column("province", String(10), Computed("split_part(receiving_agency, '.', 4)", persisted=True),
           comment="last part of the agency code (statistics by province)"),
    Index("ix_dossiers_active_agency", "receiving_agency", "status", "due_at", postgresql_where=text(
        "status IN ('received', 'in_progress', 'supplement_requested')")),
    Index("ix_dossiers_active_province", "province", "status", "due_at", postgresql_where=text(
        "status IN ('received', 'in_progress', 'supplement_requested')")),
)

history = Table(
    "history", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dossier_code", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("actor_role", String(30), nullable=False),
    Column("actor_agency", String(30)),
    Column("action", String(30), nullable=False),
    Column("from_status", String(24)),
    Column("to_status", String(24), nullable=False),
    Column("step", String(40), nullable=False),
    Column("step_due_at", DateTime(timezone=True)),
    Column("note", Text),
    Column("data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("counted_agency", String(30), nullable=False),
    Column("procedure_code", String(30), nullable=False),
    Column("field_code", String(30), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("actor_name", String(200), comment="full name from the identity records"),
    Column("actor_title", String(200), comment="title (chức danh) from the identity records"),
    Index("ix_history_dossier", "dossier_code", "id"),
)

transfers = Table(
    "transfers", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("part_code", String(60), nullable=False, unique=True, comment="linked record: <origin>-LT<n>"),
    Column("origin_code", String(40), nullable=False, index=True),
    Column("from_agency", String(30), nullable=False),
    Column("target", String(60), nullable=False, comment="agency code or outside system code"),
    Column("external", Boolean, nullable=False),
    Column("status", String(10), nullable=False, comment="pending | accepted | rejected"),
    Column("note", Text),
    Column("external_ref", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
)

apologies = Table(
    "apologies", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dossier_code", String(40), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("previous_due_at", DateTime(timezone=True), nullable=False),
    Column("new_due_at", DateTime(timezone=True), nullable=False),
    Column("issued_by", String(100), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("issued_by_name", String(200), comment="full name from the identity records"),
    Column("issued_by_title", String(200), comment="title (chức danh) from the identity records"),
    Column("signed_by_name", String(200), comment="the agency's head when issued: signs form 04"),
    Column("signed_by_title", String(200), comment="that head's title, e.g. Chủ tịch"),
)

notifications = Table(
    "notifications", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("dossier_code", String(40), index=True),
    Column("channel", String(10), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("template", String(60), nullable=False),
    Column("params", JSONB, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

portal_outbox = Table(
    "portal_outbox", metadata,
    Column("code", String(40), primary_key=True),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="dossiers received and not yet synced to the national portal (Cổng DVCQG); a row leaves once synced",
)

notification_outbox = Table(
    "notification_outbox", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("dossier_code", String(40)),
    Column("channel", String(10), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("template", String(60), nullable=False),
    Column("params", JSONB, nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="messages to send (a row leaves when it is sent or handed to its own retried job)",
)

stats_daily = Table(
    "stats_daily", metadata,
    Column("counted_agency", String(30), primary_key=True),
    Column("day", Date, primary_key=True, comment="local (Viet Nam) date of the event"),
    Column("procedure_code", String(30), primary_key=True),
    Column("field_code", String(30), primary_key=True),
    Column("channel", String(10), primary_key=True),
    Column("province", String(10), nullable=False, comment="last part of the agency code, e.g. H29"),
    Column("received", Integer, nullable=False, server_default="0"),
    Column("electronic_result", Integer, nullable=False, server_default="0"),
    Column("resolved_early", Integer, nullable=False, server_default="0"),
    Column("resolved_on_time", Integer, nullable=False, server_default="0"),
    Column("resolved_late", Integer, nullable=False, server_default="0"),
    Column("processing_minutes", BigInteger, nullable=False, server_default="0"),
    Column("returned", Integer, nullable=False, server_default="0"),
    Column("synced", Integer, nullable=False, server_default="0"),
    Column("rating_count", Integer, nullable=False, server_default="0"),
    Column("rating_sum", Integer, nullable=False, server_default="0"),
    *(Column(f"rating_{s}", Integer, nullable=False, server_default="0", comment=f"ratings of score {s}")
      for s in range(1, 6)),
    Column("received_digitised", Integer, nullable=False, server_default="0",
           comment="receipts with electronic components (digitised)"),
    Column("received_level_full", Integer, nullable=False, server_default="0",
           comment="receipts of procedures offered fully online (toàn trình)"),
    Column("received_level_partial", Integer, nullable=False, server_default="0",
           comment="receipts of procedures offered partly online (một phần)"),
    Column("accepted", Integer, nullable=False, server_default="0", comment="online dossiers accepted (action accept)"),
    Column("accepted_late", Integer, nullable=False, server_default="0",
           comment="online dossiers accepted after their acceptance time"),
    Column("synced_on_time", Integer, nullable=False, server_default="0",
           comment="synced dossiers first acknowledged within 24 hours of receipt"),
    Index("ix_stats_province_day", "province", "day"),
)
