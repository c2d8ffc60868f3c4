"""queue: offices, categories, counters, tickets, booking slots and appointments, board events

Revision ID: queue_0002
Revises: queue_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "queue_0002"
down_revision: str | None = "queue_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("booking_code", sa.String(length=20), nullable=False),
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("citizen_id", sa.String(length=100), nullable=False),
        sa.Column("citizen_name", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.String(length=12),
            nullable=False,
            comment="held | confirmed | cancelled | expired | checked_in | no_show",
        ),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'confirmed', 'cancelled', 'expired', 'checked_in', 'no_show')",
            name="ck_appointment_status",
        ),
        sa.PrimaryKeyConstraint("booking_code"),
        schema="queue",
    )
    op.create_index(
        "ix_appointments_open",
        "appointments",
        ["status", "hold_expires_at"],
        unique=False,
        schema="queue",
        postgresql_where=sa.text("status IN ('held', 'confirmed')"),
    )
    op.create_index(
        "uq_open_booking_per_category",
        "appointments",
        ["citizen_id", "office_code", "category_code"],
        unique=True,
        schema="queue",
        postgresql_where=sa.text("status IN ('held', 'confirmed')"),
    )
    op.create_table(
        "board_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False, comment="call | recall"),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema="queue",
    )
    op.create_index("ix_board_events_office", "board_events", ["office_code", "id"], unique=False, schema="queue")
    op.create_table(
        "offices",
        sa.Column("code", sa.String(length=20), nullable=False, comment="waiting room code, e.g. PBD"),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("agency_code", sa.String(length=30), nullable=False, comment="opening hours: this agency's calendar"),
        sa.Column("occupancy_cap", sa.Integer(), nullable=False, comment="most people waiting on site at once"),
        sa.Column(
            "always_open",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="24/7 (tests, bench); else the agency's working sessions",
        ),
        sa.Column(
            "hold_seconds",
            sa.Integer(),
            server_default=sa.text("300"),
            nullable=False,
            comment="how long an unconfirmed booking hold lasts",
        ),
        sa.Column("checkin_early_minutes", sa.Integer(), server_default=sa.text("30"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("code"),
        schema="queue",
    )
    op.create_table(
        "slots",
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False, comment="holds and confirmed bookings"),
        sa.CheckConstraint("taken >= 0 AND taken <= capacity", name="ck_slot_taken"),
        sa.PrimaryKeyConstraint("office_code", "category_code", "start_at"),
        schema="queue",
    )
    op.create_table(
        "ticket_numbers",
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False, comment="local Viet Nam date"),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("office_code", "category_code", "day"),
        schema="queue",
    )
    op.create_table(
        "categories",
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("prefix", sa.String(length=2), nullable=False, comment="ticket prefix letter, A, B ..."),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column(
            "procedure_codes", postgresql.ARRAY(sa.String(length=30)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("slot_minutes", sa.Integer(), server_default=sa.text("30"), nullable=False),
        sa.Column("slot_capacity", sa.Integer(), server_default=sa.text("2"), nullable=False),
        sa.Column(
            "default_service_seconds",
            sa.Integer(),
            server_default=sa.text("300"),
            nullable=False,
            comment="wait estimate before any history exists",
        ),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False, comment="order on the kiosk"),
        sa.ForeignKeyConstraint(
            ["office_code"],
            ["queue.offices.code"],
        ),
        sa.PrimaryKeyConstraint("office_code", "code"),
        sa.UniqueConstraint("office_code", "prefix", name="uq_category_prefix"),
        schema="queue",
    )
    op.create_table(
        "counters",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False, comment="quầy số"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category_codes", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("officer_subject", sa.String(length=100), nullable=True, comment="officer signed in at the counter"),
        sa.Column("officer_name", sa.String(length=200), nullable=True),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.ForeignKeyConstraint(
            ["office_code"],
            ["queue.offices.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office_code", "number", name="uq_counter_number"),
        schema="queue",
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False, comment="current category (after transfers)"),
        sa.Column("number_category", sa.String(length=20), nullable=False, comment="category the number was drawn in"),
        sa.Column("day", sa.Date(), nullable=False, comment="local Viet Nam date of issue"),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("display", sa.String(length=12), nullable=False, comment="A001"),
        sa.Column(
            "priority", sa.SmallInteger(), server_default=sa.text("0"), nullable=False, comment="1: priority group"
        ),
        sa.Column("priority_group", sa.String(length=30), nullable=True),
        sa.Column(
            "status", sa.String(length=12), nullable=False, comment="waiting | called | serving | finished | skipped"
        ),
        sa.Column("booking_code", sa.String(length=20), nullable=True),
        sa.Column(
            "slot_start", sa.DateTime(timezone=True), nullable=True, comment="checked-in booking: served from this time"
        ),
        sa.Column("counter_id", sa.Integer(), nullable=True, comment="counter that called it"),
        sa.Column("target_counter_id", sa.Integer(), nullable=True, comment="transferred to this counter"),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, comment="place in the queue"),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("serving_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True, comment="came back after a skip (once)"),
        sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recalls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("served_by", sa.String(length=100), nullable=True),
        sa.Column(
            "dossier_codes", postgresql.ARRAY(sa.String(length=40)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("issued_by", sa.String(length=100), nullable=False),
        sa.Column("issued_role", sa.String(length=30), nullable=False),
        sa.CheckConstraint(
            "status IN ('waiting', 'called', 'serving', 'finished', 'skipped')", name="ck_ticket_status"
        ),
        sa.ForeignKeyConstraint(
            ["office_code", "category_code"],
            ["queue.categories.office_code", "queue.categories.code"],
            name="fk_ticket_category",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office_code", "number_category", "day", "number", name="uq_ticket_number"),
        schema="queue",
    )
    op.create_index(
        "ix_tickets_at_counter",
        "tickets",
        ["counter_id"],
        unique=False,
        schema="queue",
        postgresql_where=sa.text("status IN ('called', 'serving')"),
    )
    op.create_index("ix_tickets_day", "tickets", ["office_code", "day"], unique=False, schema="queue")
    op.create_index(
        "ix_tickets_finished",
        "tickets",
        ["office_code", "category_code", "finished_at"],
        unique=False,
        schema="queue",
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tickets_waiting",
        "tickets",
        ["office_code", sa.literal_column("priority DESC"), "queued_at", "id"],
        unique=False,
        schema="queue",
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_index(
        "ix_tickets_waiting_slot",
        "tickets",
        ["office_code", "slot_start"],
        unique=False,
        schema="queue",
        postgresql_where=sa.text("status = 'waiting' AND slot_start IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_tickets_waiting_slot",
        table_name="tickets",
        schema="queue",
        postgresql_where=sa.text("status = 'waiting' AND slot_start IS NOT NULL"),
    )
    op.drop_index(
        "ix_tickets_waiting", table_name="tickets", schema="queue", postgresql_where=sa.text("status = 'waiting'")
    )
    op.drop_index(
        "ix_tickets_finished", table_name="tickets", schema="queue", postgresql_where=sa.text("finished_at IS NOT NULL")
    )
    op.drop_index("ix_tickets_day", table_name="tickets", schema="queue")
    op.drop_index(
        "ix_tickets_at_counter",
        table_name="tickets",
        schema="queue",
        postgresql_where=sa.text("status IN ('called', 'serving')"),
    )
    op.drop_table("tickets", schema="queue")
    op.drop_table("counters", schema="queue")
    op.drop_table("categories", schema="queue")
    op.drop_table("ticket_numbers", schema="queue")
    op.drop_table("slots", schema="queue")
    op.drop_table("offices", schema="queue")
    op.drop_index("ix_board_events_office", table_name="board_events", schema="queue")
    op.drop_table("board_events", schema="queue")
    op.drop_index(
        "uq_open_booking_per_category",
        table_name="appointments",
        schema="queue",
        postgresql_where=sa.text("status IN ('held', 'confirmed')"),
    )
    op.drop_index(
        "ix_appointments_open",
        table_name="appointments",
        schema="queue",
        postgresql_where=sa.text("status IN ('held', 'confirmed')"),
    )
    op.drop_table("appointments", schema="queue")
