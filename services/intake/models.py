"""Tables of schema `intake` (this service is their only writer)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.idempotency import idempotency_table

metadata = MetaData(schema="intake")
idempotency_keys = idempotency_table(metadata)

dossiers = Table(
    "dossiers", metadata,
    Column("code", String(40), primary_key=True, comment="mã hồ sơ, never changed"),
    Column("procedure_code", String(30), nullable=False),
    Column("procedure_version_id", Integer, nullable=False),
    Column("receiving_agency", String(30), nullable=False),
    Column("competent_agency", String(30), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("applicant", JSONB, nullable=False),
    Column("applicant_id_number", String(12), nullable=False, index=True),
    Column("submitted_by", String(100), nullable=False),
    Column("submitted_role", String(30), nullable=False),
    Column("documents", JSONB, nullable=False),
    Column("number_of_sets", Integer, nullable=False),
    Column("result_delivery", String(20), nullable=False),
    Column("delivery_address", JSONB),
    Column("fee", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), comment="null until the clock starts (online: acceptance; postal "
           "certification: the paper's arrival)"),
    Column("clock_started", Boolean, nullable=False),
    Column("queue_ticket_id", String(40)),
    Column("notes", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("supplement_due_at", DateTime(timezone=True), comment="set while the workflow waits for a supplement"),
    Column("supplement_documents", JSONB, comment="what the workflow asked for"),
    Column("receiver_name", String(200), comment="full name from the identity records"),
    Column("receiver_title", String(200), comment="title (chức danh) from the identity records"),
    Column("representative", JSONB, comment="who filed for the applicant: {full_name, id_number, relation}"),
)

supplements = Table(
    "supplements", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dossier_code", String(40), nullable=False, index=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("received_by", String(100), nullable=False),
    Column("documents", JSONB, nullable=False),
    Column("note", Text),
)

counter_records = Table(
    "counter_records", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False, comment="refusal (form 03) | completion_request (form 02)"),
    Column("agency_code", String(30), nullable=False),
    Column("procedure_code", String(30), nullable=False),
    Column("applicant", JSONB, nullable=False),
    Column("reason", Text, nullable=False),
    Column("documents", JSONB, nullable=False, comment="documents to add or complete (form 02)"),
    Column("officer", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("officer_name", String(200), comment="full name from the identity records"),
    Column("officer_title", String(200), comment="title (chức danh) from the identity records"),
)

files = Table(
    "files", metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(100), nullable=False, comment="subject of the uploader"),
    Column("owner_role", String(30), nullable=False),
    Column("name", String(255), nullable=False),
    Column("content_type", String(100), nullable=False, comment="sniffed from the content"),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

file_links = Table(
    "file_links", metadata,
    Column("file_id", String(36), primary_key=True),
    Column("dossier_code", String(40), primary_key=True),
    comment="which dossiers (or their supplements) a file is attached to: the staff of their agencies may read it",
)

daily_counters = Table(
    "daily_counters", metadata,
    Column("agency_code", String(30), primary_key=True),
    Column("day", Date, primary_key=True, comment="receipt date in Viet Nam time"),
    Column("series", String(2), primary_key=True, server_default="",
           comment="'': <receiving agency>-YYMMDD-XXXX; AA: <deciding body>-YYMMDD-AAXXXX (Circular 04/2025)"),
    Column("last_number", Integer, nullable=False),
    CheckConstraint("series <> '' OR last_number <= 9999", name="daily_counters_at_most_9999"),
    CheckConstraint("series ~ '^([0-9]{2})?$'", name="daily_counters_series_digits"),
)

centralised_services = Table(
    "centralised_services", metadata,
    Column("procedure_code", String(30), primary_key=True),
    Column("owner_digits", String(2), nullable=False,
           comment="AA: 2 digits of the e-ID code of the body owning the central system"),
    Column("since", Date, nullable=False, server_default=text("'2026-01-25'"),
           comment="first receipt day coded in the centralised format (never before 2026-01-25)"),
    Column("note", Text, nullable=False, server_default=""),
    CheckConstraint("owner_digits ~ '^[0-9]{2}$'", name="centralised_services_owner_digits"),
    comment="procedures provided through a nationally centralised system (Circular 04/2025)",
)
