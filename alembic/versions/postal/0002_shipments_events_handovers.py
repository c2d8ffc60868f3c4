"""partners, shipments, webhook deliveries, timeline events, handover records

Revision ID: postal_0002
Revises: postal_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "postal_0002"
down_revision: str | None = "postal_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "postal"
STATUSES = ("created", "picked_up", "in_transit", "out_for_delivery", "delivered", "failed_attempt",
            "returned_to_sender", "cancelled")
STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE postal.tracking_seq START 10000001")
    op.create_table(
        "partners",
        sa.Column("code", sa.String(30), primary_key=True, comment="e.g. VNPOST"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False,
                  comment="its API client (client_credentials) at the gateway"),
        sa.Column("tracking_api", sa.String(20), nullable=False, server_default="none",
                  comment="polling fallback adapter: none | simulator | http"),
        sa.Column("tracking_api_url", sa.String(500)),
        sa.Column("tracking_prefix", sa.String(2), nullable=False, server_default="HC",
                  comment="S10 prefix of the tracking numbers allocated here"),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default="false",
                  comment="the partner used for outbound shipments created by the workflow"),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "partner_secrets",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("partner_code", sa.String(30), sa.ForeignKey("postal.partners.code"), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False,
                  comment="whsec_<base64>; two may be valid during rotation"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), comment="null: valid until revoked"),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("partner_code", "secret", name="uq_partner_secret"),
        schema=S,
    )
    op.create_index("ix_postal_partner_secrets_partner_code", "partner_secrets", ["partner_code"], schema=S)
    op.create_table(
        "partner_services",
        sa.Column("partner_code", sa.String(30), sa.ForeignKey("postal.partners.code"), nullable=False),
        sa.Column("code", sa.String(30), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False, comment="inbound | outbound | both"),
        sa.PrimaryKeyConstraint("partner_code", "code", name="pk_partner_services"),
        schema=S,
    )
    op.create_table(
        "fees",
        sa.Column("partner_code", sa.String(30), nullable=False),
        sa.Column("service_code", sa.String(30), nullable=False),
        sa.Column("max_weight_grams", sa.Integer, nullable=False),
        sa.Column("postage", sa.Integer, nullable=False, comment="VND, paid by the citizen"),
        sa.PrimaryKeyConstraint("partner_code", "service_code", "max_weight_grams", name="pk_fees"),
        schema=S,
    )
    op.create_table(
        "shipments",
        sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("direction", sa.String(10), nullable=False,
                  comment="inbound: dossier to agency; outbound: result to citizen"),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("agency_code", sa.String(30), nullable=False, comment="the agency that sends or receives"),
        sa.Column("partner_code", sa.String(30), sa.ForeignKey("postal.partners.code"), nullable=False),
        sa.Column("tracking_number", sa.String(40), nullable=False),
        sa.Column("service_code", sa.String(30), nullable=False),
        sa.Column("sender", JSONB, nullable=False, comment="{name, phone, address_line, ward_code}"),
        sa.Column("recipient", JSONB, nullable=False, comment="{name, phone, address_line, ward_code}"),
        sa.Column("weight_grams", sa.Integer, nullable=False),
        sa.Column("postage", sa.Integer, nullable=False, comment="VND, paid by the citizen"),
        sa.Column("cod_amount", sa.Integer, nullable=False, server_default="0",
                  comment="fees collected on delivery, VND"),
        sa.Column("status", sa.String(20), nullable=False, server_default="created"),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False, comment="occurred_at of the status"),
        sa.Column("failure_reason", sa.String(30)),
        sa.Column("failure_raw_code", sa.String(60)),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_event_at", sa.DateTime(timezone=True), comment="latest occurred_at in the timeline"),
        sa.Column("last_heard_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now(),
                  comment="when the partner last told us anything (polling fallback)"),
        sa.Column("effects", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"),
                  comment="effects sent once: {name: at}"),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.UniqueConstraint("dossier_code", "direction", name="uq_shipment_dossier_direction"),
        sa.UniqueConstraint("partner_code", "tracking_number", name="uq_shipment_tracking"),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_shipment_direction"),
        sa.CheckConstraint(f"status IN ({STATUS_LIST})", name="ck_shipment_status"),
        schema=S,
    )
    op.create_index("ix_shipments_agency_created", "shipments", ["agency_code", "created_at", "id"], schema=S)
    op.create_index("ix_shipments_partner_created", "shipments", ["partner_code", "created_at", "id"], schema=S)
    op.create_index("ix_shipments_open_heard", "shipments", ["last_heard_at"], schema=S,
                    postgresql_where=sa.text("status NOT IN ('delivered', 'returned_to_sender', 'cancelled')"))
    op.create_table(
        "deliveries",
        sa.Column("partner_code", sa.String(30), nullable=False),
        sa.Column("webhook_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("partner_code", "webhook_id", name="pk_deliveries"),
        schema=S,
    )
    op.create_table(
        "shipment_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("shipment_id", UUID(as_uuid=False), sa.ForeignKey("postal.shipments.id"), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False,
                  comment="the partner's event id, or a hash of the event"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("source", sa.String(10), nullable=False, comment="webhook | poll | api"),
        sa.Column("webhook_id", sa.String(200)),
        sa.Column("event_index", sa.Integer, comment="position in the delivery's batch"),
        sa.Column("correction", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("failure_reason", sa.String(30)),
        sa.Column("raw_code", sa.String(60)),
        sa.Column("location", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("shipment_id", "dedupe_key", name="uq_event_dedupe"),
        sa.CheckConstraint(f"status IN ({STATUS_LIST})", name="ck_event_status"),
        schema=S,
    )
    op.create_table(
        "handovers",
        sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("agency_code", sa.String(30), nullable=False),
        sa.Column("partner_code", sa.String(30), sa.ForeignKey("postal.partners.code"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False,
                  comment="to_postal: office hands results to the postman; to_office: postman hands dossiers in"),
        sa.Column("status", sa.String(20), nullable=False, server_default="open",
                  comment="open | confirmed | cancelled"),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("office_signer", JSONB, nullable=False, comment="{name, title}"),
        sa.Column("postal_signer", JSONB, nullable=False, comment="{name, title}"),
        sa.Column("location", sa.String(300)),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("confirmed_by", sa.String(100)),
        sa.CheckConstraint("kind IN ('to_postal', 'to_office')", name="ck_handover_kind"),
        sa.CheckConstraint("status IN ('open', 'confirmed', 'cancelled')", name="ck_handover_status"),
        schema=S,
    )
    op.create_table(
        "handover_items",
        sa.Column("handover_id", UUID(as_uuid=False), sa.ForeignKey("postal.handovers.id"), nullable=False),
        sa.Column("shipment_id", UUID(as_uuid=False), sa.ForeignKey("postal.shipments.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("is_open", sa.Boolean, nullable=False, comment="true while the handover is open"),
        sa.PrimaryKeyConstraint("handover_id", "shipment_id", name="pk_handover_items"),
        schema=S,
    )
    op.create_index("uq_handover_items_one_open", "handover_items", ["shipment_id"], unique=True, schema=S,
                    postgresql_where=sa.text("is_open"))


def downgrade() -> None:
    for table in ("handover_items", "handovers", "shipment_events", "deliveries", "shipments", "fees",
                  "partner_services", "partner_secrets", "partners"):
        op.drop_table(table, schema=S)
    op.execute("DROP SEQUENCE postal.tracking_seq")
