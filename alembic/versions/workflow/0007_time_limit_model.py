"""time-limit model: no due date before the clock starts, online acceptance, verification extension

Revision ID: workflow_0007
Revises: workflow_0006
Create Date: 2026-12-08

- `due_at` / `original_due_at` are null until the clock starts (an online dossier until an officer accepts
  it; a certification sent by post until the paper arrives): such a dossier is never overdue;
- `time_limit` keeps the limit of the dossier's channel (with the catalog's verification extension), so the
  workflow computes the due date at acceptance; `verification_days` the extension used so far;
- `acceptance_alert_at`, `acceptance_due_at`, `acceptance_alerted_at`, `accepted_at`: the online acceptance
  timer;
- every process definition gains the actions `accept` (received) and `extend_for_verification` (received,
  in progress), for officers and supervisors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "workflow_0007"
down_revision: str | None = "workflow_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "workflow"
TZ = sa.DateTime(timezone=True)
STAFF = ["officer", "supervisor"]
DUE = "moves with pauses, apologies and verification; null until the clock starts"
ORIGINAL = ("legal due date (moves with pauses and verification, not apologies): on time / late is judged on it; "
            "null until the clock starts")
OLD_DUE = "moves with pauses and apologies"
OLD_ORIGINAL = "legal due date (moves with pauses, not apologies): on time / late is judged on it"
NEW_ACTIONS = {
    "received": {"accept": {"roles": STAFF, "to": "received"},
                 "extend_for_verification": {"roles": STAFF, "to": "received"}},
    "in_progress": {"extend_for_verification": {"roles": STAFF, "to": "in_progress"}},
}


def upgrade() -> None:
    op.alter_column("dossiers", "due_at", existing_type=TZ, nullable=True, comment=DUE,
                    existing_comment=OLD_DUE, schema=S)
    op.alter_column("dossiers", "original_due_at", existing_type=TZ, nullable=True, comment=ORIGINAL,
                    existing_comment=OLD_ORIGINAL, schema=S)
    op.add_column("dossiers", sa.Column(
        "time_limit", JSONB, comment="the limit for this dossier's channel: {value, unit, verification_extension}"),
        schema=S)
    op.add_column("dossiers", sa.Column(
        "verification_days", sa.Integer, nullable=False, server_default="0",
        comment="working days added for verification so far (at most time_limit.verification_extension)"), schema=S)
    op.add_column("dossiers", sa.Column("acceptance_alert_at", TZ,
                                        comment="online: when the one-stop officers are alerted"), schema=S)
    op.add_column("dossiers", sa.Column("acceptance_due_at", TZ,
                                        comment="online: acceptance (or a supplement request) due"), schema=S)
    op.add_column("dossiers", sa.Column("acceptance_alerted_at", TZ), schema=S)
    op.add_column("dossiers", sa.Column("accepted_at", TZ,
                                        comment="online: the officer's acceptance (the clock starts)"), schema=S)
    for state, actions in NEW_ACTIONS.items():
        op.execute(sa.text(
            "UPDATE workflow.process_definitions SET transitions = jsonb_set(transitions, ARRAY[CAST(:state AS text)], "
            "(transitions->:state) || CAST(:actions AS jsonb)) WHERE (transitions->:state) IS NOT NULL"
        ).bindparams(state=state, actions=json.dumps(actions)))


def downgrade() -> None:
    for state, actions in NEW_ACTIONS.items():
        for action in actions:
            op.execute(sa.text(
                "UPDATE workflow.process_definitions SET transitions = jsonb_set(transitions, "
                "ARRAY[CAST(:state AS text)], (transitions->:state) - :action) WHERE (transitions->:state) IS NOT NULL"
            ).bindparams(state=state, action=action))
    for column in ("accepted_at", "acceptance_alerted_at", "acceptance_due_at", "acceptance_alert_at",
                   "verification_days", "time_limit"):
        op.drop_column("dossiers", column, schema=S)
    op.execute("UPDATE workflow.dossiers SET due_at = received_at WHERE due_at IS NULL")
    op.execute("UPDATE workflow.dossiers SET original_due_at = due_at WHERE original_due_at IS NULL")
    op.alter_column("dossiers", "original_due_at", existing_type=TZ, nullable=False, comment=OLD_ORIGINAL,
                    existing_comment=ORIGINAL, schema=S)
    op.alter_column("dossiers", "due_at", existing_type=TZ, nullable=False, comment=OLD_DUE,
                    existing_comment=DUE, schema=S)
