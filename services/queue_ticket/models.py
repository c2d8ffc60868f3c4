"""Tables of schema `queue` (this service is their only writer)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.idempotency import idempotency_table

metadata = MetaData(schema="queue")
idempotency_keys = idempotency_table(metadata)

offices = Table(
    "offices", metadata,
    Column("code", String(20), primary_key=True, comment="waiting room code, e.g. PBD"),
    Column("name", String(300), nullable=False),
    Column("agency_code", String(30), nullable=False, comment="opening hours: this agency's calendar"),
    Column("occupancy_cap", Integer, nullable=False, comment="most people waiting on site at once"),
    Column("always_open", Boolean, nullable=False, server_default=text("false"),
           comment="24/7 (tests, bench); else the agency's working sessions"),
    Column("hold_seconds", Integer, nullable=False, server_default=text("300"),
           comment="how long an unconfirmed booking hold lasts"),
    Column("checkin_early_minutes", Integer, nullable=False, server_default=text("30")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
)

categories = Table(
    "categories", metadata,
    Column("office_code", String(20), ForeignKey("queue.offices.code"), primary_key=True),
    Column("code", String(20), primary_key=True),
    Column("prefix", String(2), nullable=False, comment="ticket prefix letter, A, B ..."),
    Column("name", String(300), nullable=False),
    Column("procedure_codes", ARRAY(String(30)), nullable=False, server_default=text("'{}'")),
    Column("slot_minutes", Integer, nullable=False, server_default=text("30")),
    Column("slot_capacity", Integer, nullable=False, server_default=text("2")),
    Column("default_service_seconds", Integer, nullable=False, server_default=text("300"),
           comment="wait estimate before any history exists"),
    Column("position", Integer, nullable=False, server_default=text("0"), comment="order on the kiosk"),
    UniqueConstraint("office_code", "prefix", name="uq_category_prefix"),
)

counters = Table(
    "counters", metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("office_code", String(20), ForeignKey("queue.offices.code"), nullable=False),
    Column("number", Integer, nullable=False, comment="quầy số"),
    Column("name", String(200), nullable=False),
    Column("category_codes", ARRAY(String(20)), nullable=False),
    Column("officer_subject", String(100), comment="officer signed in at the counter"),
    Column("officer_name", String(200)),
    Column("signed_in_at", DateTime(timezone=True)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("current_ticket_id", BigInteger,
           comment="the ticket called or being served here (call-next's If-Match is checked against it)"),
    UniqueConstraint("office_code", "number", name="uq_counter_number"),
)

ticket_numbers = Table(
    "ticket_numbers", metadata,
    Column("office_code", String(20), primary_key=True),
    Column("category_code", String(20), primary_key=True),
    Column("day", Date, primary_key=True, comment="local Viet Nam date"),
    Column("last_number", Integer, nullable=False),
)

tickets = Table(
    "tickets", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("office_code", String(20), nullable=False),
    Column("category_code", String(20), nullable=False, comment="current category (after transfers)"),
    Column("number_category", String(20), nullable=False, comment="category the number was drawn in"),
    Column("day", Date, nullable=False, comment="local Viet Nam date of issue"),
    Column("number", Integer, nullable=False),
    Column("display", String(12), nullable=False, comment="A001"),
    Column("priority", SmallInteger, nullable=False, server_default=text("0"), comment="1: priority group"),
    Column("priority_group", String(30)),
    Column("status", String(12), nullable=False,
           comment="waiting | called | serving | finished | skipped"),
    Column("booking_code", String(20)),
    Column("slot_start", DateTime(timezone=True), comment="checked-in booking: served from this time"),
    Column("counter_id", Integer, comment="counter that called it"),
    Column("target_counter_id", Integer, comment="transferred to this counter"),
    Column("queued_at", DateTime(timezone=True), nullable=False, comment="place in the queue"),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("called_at", DateTime(timezone=True)),
    Column("serving_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("skipped_at", DateTime(timezone=True)),
    Column("returned_at", DateTime(timezone=True), comment="came back after a skip (once)"),
    Column("transferred_at", DateTime(timezone=True)),
    Column("recalls", Integer, nullable=False, server_default=text("0")),
    Column("served_by", String(100)),
    Column("dossier_codes", ARRAY(String(40)), nullable=False, server_default=text("'{}'")),
    Column("issued_by", String(100), nullable=False),
    Column("issued_role", String(30), nullable=False),
    UniqueConstraint("office_code", "number_category", "day", "number", name="uq_ticket_number"),
    ForeignKeyConstraint(["office_code", "category_code"], ["queue.categories.office_code", "queue.categories.code"],
                         name="fk_ticket_category"),
    CheckConstraint("status IN ('waiting', 'called', 'serving', 'finished', 'skipped')", name="ck_ticket_status"),
)
Index("ix_tickets_waiting", tickets.c.office_code, tickets.c.priority.desc(), tickets.c.queued_at, tickets.c.id,
      postgresql_where=text("status = 'waiting'"))
Index("ix_tickets_waiting_slot", tickets.c.office_code, tickets.c.slot_start,
      postgresql_where=text("status = 'waiting' AND slot_start IS NOT NULL"))
Index("ix_tickets_at_counter", tickets.c.counter_id,
      postgresql_where=text("status IN ('called', 'serving')"))
Index("ix_tickets_finished", tickets.c.office_code, tickets.c.category_code, tickets.c.finished_at,
      postgresql_where=text("finished_at IS NOT NULL"))
Index("ix_tickets_day", tickets.c.office_code, tickets.c.day)

slots = Table(
    "slots", metadata,
    Column("office_code", String(20), primary_key=True),
    Column("category_code", String(20), primary_key=True),
    Column("start_at", DateTime(timezone=True), primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("taken", Integer, nullable=False, comment="holds and confirmed bookings"),
    CheckConstraint("taken >= 0 AND taken <= capacity", name="ck_slot_taken"),
)

appointments = Table(
    "appointments", metadata,
    Column("booking_code", String(20), primary_key=True),
    Column("office_code", String(20), nullable=False),
    Column("category_code", String(20), nullable=False),
    Column("citizen_id", String(100), nullable=False),
    Column("citizen_name", String(200)),
    Column("phone", String(20)),
    Column("slot_start", DateTime(timezone=True), nullable=False),
    Column("slot_end", DateTime(timezone=True), nullable=False),
    Column("status", String(12), nullable=False,
           comment="held | confirmed | cancelled | expired | checked_in | no_show"),
    Column("hold_expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("checked_in_at", DateTime(timezone=True)),
    Column("released_at", DateTime(timezone=True)),
    Column("ticket_id", BigInteger),
    CheckConstraint("status IN ('held', 'confirmed', 'cancelled', 'expired', 'checked_in', 'no_show')",
                    name="ck_appointment_status"),
)
Index("uq_open_booking_per_category", appointments.c.citizen_id, appointments.c.office_code,
      appointments.c.category_code, unique=True, postgresql_where=text("status IN ('held', 'confirmed')"))
Index("ix_appointments_open", appointments.c.status, appointments.c.hold_expires_at,
      postgresql_where=text("status IN ('held', 'confirmed')"))

board_events = Table(
    "board_events", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("office_code", String(20), nullable=False),
    Column("kind", String(20), nullable=False, comment="call | recall"),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_board_events_office", board_events.c.office_code, board_events.c.id)

BOARD_CHANNEL = "queue_board"
