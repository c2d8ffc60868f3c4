"""Tables of schema `postal` (this service is their only writer)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.idempotency import idempotency_table

metadata = MetaData(schema="postal")
idempotency_keys = idempotency_table(metadata)

STATUSES = ("created", "picked_up", "in_transit", "out_for_delivery", "delivered", "failed_attempt",
            "returned_to_sender", "cancelled")
FINAL_STATUSES = ("delivered", "returned_to_sender", "cancelled")
FAILURE_REASONS = ("recipient_not_home", "recipient_refused", "address_not_found", "damaged", "other")
_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)

partners = Table(
    "partners", metadata,
    Column("code", String(30), primary_key=True, comment="e.g. VNPOST"),
    Column("name", String(200), nullable=False),
    Column("client_id", String(100), nullable=False, comment="its API client (client_credentials) at the gateway"),
    Column("tracking_api", String(20), nullable=False, server_default="none",
           comment="polling fallback adapter: none | simulator | http"),
    Column("tracking_api_url", String(500)),
    Column("tracking_prefix", String(2), nullable=False, server_default="HC",
           comment="S10 prefix of the tracking numbers allocated here"),
    Column("is_default", Boolean, nullable=False, server_default="false",
           comment="the partner used for outbound shipments created by the workflow"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

partner_secrets = Table(
    "partner_secrets", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("partner_code", String(30), ForeignKey("postal.partners.code"), nullable=False, index=True),
    Column("secret", String(200), nullable=False, comment="whsec_<base64>; two may be valid during rotation"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), comment="null: valid until revoked"),
    Column("revoked_at", DateTime(timezone=True)),
    UniqueConstraint("partner_code", "secret", name="uq_partner_secret"),
)

partner_services = Table(
    "partner_services", metadata,
    Column("partner_code", String(30), ForeignKey("postal.partners.code"), nullable=False),
    Column("code", String(30), nullable=False),
    Column("name", String(200), nullable=False),
    Column("direction", String(10), nullable=False, comment="inbound | outbound | both"),
    PrimaryKeyConstraint("partner_code", "code", name="pk_partner_services"),
)

fees = Table(
    "fees", metadata,
    Column("partner_code", String(30), nullable=False),
    Column("service_code", String(30), nullable=False),
    Column("max_weight_grams", Integer, nullable=False),
    Column("postage", Integer, nullable=False, comment="VND, paid by the citizen"),
    PrimaryKeyConstraint("partner_code", "service_code", "max_weight_grams", name="pk_fees"),
)

dossiers = Table(
    "dossiers", metadata,
    Column("code", String(40), primary_key=True, comment="mã hồ sơ, as intake gave it"),
    Column("receiving_agency", String(30), nullable=False),
    Column("competent_agency", String(30), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("result_delivery", String(20), nullable=False),
    Column("partner_code", String(30), comment="the postal partner that registered it (postal channel), else null"),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("known_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="dossiers that may travel by post, copied from intake's `postal.dossier_received` jobs: "
            "who may create their shipments",
)

shipments = Table(
    "shipments", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("direction", String(10), nullable=False, comment="inbound: dossier to agency; outbound: result to citizen"),
    Column("dossier_code", String(40), nullable=False),
    Column("agency_code", String(30), nullable=False, comment="the agency that sends or receives"),
    Column("partner_code", String(30), ForeignKey("postal.partners.code"), nullable=False),
    Column("tracking_number", String(40), nullable=False),
    Column("service_code", String(30), nullable=False),
    Column("sender", JSONB, nullable=False, comment="{name, phone, address_line, ward_code}"),
    Column("recipient", JSONB, nullable=False, comment="{name, phone, address_line, ward_code}"),
    Column("weight_grams", Integer, nullable=False),
    Column("postage", Integer, nullable=False, comment="VND, paid by the citizen"),
    Column("cod_amount", Integer, nullable=False, server_default="0", comment="fees collected on delivery, VND"),
    Column("status", String(20), nullable=False, server_default="created"),
    Column("status_at", DateTime(timezone=True), nullable=False, comment="occurred_at of the status"),
    Column("failure_reason", String(30)),
    Column("failure_raw_code", String(60)),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("last_event_at", DateTime(timezone=True), comment="latest occurred_at in the timeline"),
    Column("last_heard_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           comment="when the partner last told us anything (polling fallback)"),
    Column("effects", JSONB, nullable=False, server_default=text("'{}'::jsonb"),
           comment="effects sent once: {name: at}"),
    Column("note", Text),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
    UniqueConstraint("dossier_code", "direction", name="uq_shipment_dossier_direction"),
    UniqueConstraint("partner_code", "tracking_number", name="uq_shipment_tracking"),
    CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_shipment_direction"),
    CheckConstraint(f"status IN ({_STATUS_LIST})", name="ck_shipment_status"),
)
Index("ix_shipments_agency_created", shipments.c.agency_code, shipments.c.created_at, shipments.c.id)
Index("ix_shipments_partner_created", shipments.c.partner_code, shipments.c.created_at, shipments.c.id)
Index("ix_shipments_open_heard", shipments.c.last_heard_at,
      postgresql_where=text("status NOT IN ('delivered', 'returned_to_sender', 'cancelled')"))

deliveries = Table(
    "deliveries", metadata,
    Column("partner_code", String(30), nullable=False),
    Column("webhook_id", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("events", Integer, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    PrimaryKeyConstraint("partner_code", "webhook_id", name="pk_deliveries"),
)

shipment_events = Table(
    "shipment_events", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("shipment_id", UUID(as_uuid=False), ForeignKey("postal.shipments.id"), nullable=False),
    Column("dedupe_key", String(200), nullable=False, comment="the partner's event id, or a hash of the event"),
    Column("status", String(20), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("source", String(10), nullable=False, comment="webhook | poll | api"),
    Column("webhook_id", String(200)),
    Column("event_index", Integer, comment="position in the delivery's batch"),
    Column("correction", Boolean, nullable=False, server_default="false"),
    Column("failure_reason", String(30)),
    Column("raw_code", String(60)),
    Column("location", String(200)),
    Column("note", Text),
    UniqueConstraint("shipment_id", "dedupe_key", name="uq_event_dedupe"),
    CheckConstraint(f"status IN ({_STATUS_LIST})", name="ck_event_status"),
)

handovers = Table(
    "handovers", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("agency_code", String(30), nullable=False),
    Column("partner_code", String(30), ForeignKey("postal.partners.code"), nullable=False),
    Column("kind", String(20), nullable=False,
           comment="to_postal: office hands results to the postman; to_office: postman hands dossiers in"),
    Column("status", String(20), nullable=False, server_default="open", comment="open | confirmed | cancelled"),
    Column("handed_over_at", DateTime(timezone=True), nullable=False),
    Column("office_signer", JSONB, nullable=False, comment="{name, title}"),
    Column("postal_signer", JSONB, nullable=False, comment="{name, title}"),
    Column("location", String(300)),
    Column("note", Text),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("confirmed_by", String(100)),
    CheckConstraint("kind IN ('to_postal', 'to_office')", name="ck_handover_kind"),
    CheckConstraint("status IN ('open', 'confirmed', 'cancelled')", name="ck_handover_status"),
)

handover_items = Table(
    "handover_items", metadata,
    Column("handover_id", UUID(as_uuid=False), ForeignKey("postal.handovers.id"), nullable=False),
    Column("shipment_id", UUID(as_uuid=False), ForeignKey("postal.shipments.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("is_open", Boolean, nullable=False, comment="true while the handover is open"),
    PrimaryKeyConstraint("handover_id", "shipment_id", name="pk_handover_items"),
)
Index("uq_handover_items_one_open", handover_items.c.shipment_id, unique=True,
      postgresql_where=text("is_open"))
