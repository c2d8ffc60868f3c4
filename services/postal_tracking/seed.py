"""Demo postal partner (VNPost), its webhook secret, service codes and fee table (idempotent).

The secret below is public demo data for local use only (the seed never runs in production).
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert

from services.postal_tracking.models import fees, partner_secrets, partner_services, partners
from shared.db import Tx

DEMO_PARTNER = "VNPOST"
# Standard Webhooks secret: "whsec_" + base64 of 32 bytes ("motcua-demo-vnpost-webhook-key-01").
DEMO_WEBHOOK_SECRET = "whsec_bW90Y3VhLWRlbW8tdm5wb3N0LXdlYmhvb2sta2V5LTAx"  # noqa: S105 - public demo data

SERVICES = [
    ("HCC-HS", "Chuyển phát hồ sơ thủ tục hành chính (thu gom tại nhà/quầy)", "inbound"),
    ("HCC-KQ", "Chuyển phát kết quả giải quyết thủ tục hành chính đến tận tay", "outbound"),
]
# Example postage by weight bracket (VND, within a province); each partner publishes its own table.
FEE_TABLE = [(250, 26_000), (500, 31_000), (1_000, 38_000), (2_000, 48_000), (5_000, 70_000)]


async def seed(tx: Tx) -> None:
    await tx.execute(insert(partners).values(
        code=DEMO_PARTNER, name="Bưu điện Việt Nam (VNPost)", client_id="vnpost", tracking_api="simulator",
        tracking_prefix="HC", is_default=True,
    ).on_conflict_do_nothing())
    await tx.execute(insert(partner_secrets).values(
        partner_code=DEMO_PARTNER, secret=DEMO_WEBHOOK_SECRET,
    ).on_conflict_do_nothing(constraint="uq_partner_secret"))
    await tx.execute(insert(partner_services).values([
        {"partner_code": DEMO_PARTNER, "code": code, "name": name, "direction": direction}
        for code, name, direction in SERVICES]).on_conflict_do_nothing())
    await tx.execute(insert(fees).values([
        {"partner_code": DEMO_PARTNER, "service_code": code, "max_weight_grams": max_weight, "postage": postage}
        for code, _name, _direction in SERVICES for max_weight, postage in FEE_TABLE]).on_conflict_do_nothing())
