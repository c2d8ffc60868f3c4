"""the receiving officer's and the slip's officer's full name and title, as the forms print them

Form 01 (receipt) is signed by NGƯỜI TIẾP NHẬN HỒ SƠ and forms 02/03 by the officer who wrote them: by
full name and title (chức danh) from the identity records at the time, never by an account name. Rows
written before this migration have none: their forms leave the line to sign and write by hand.

Revision ID: intake_0008
Revises: intake_0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0008"
down_revision: str | None = "intake_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"dossiers": ("receiver_name", "receiver_title"), "counter_records": ("officer_name", "officer_title")}


def upgrade() -> None:
    for table, (name, title) in COLUMNS.items():
        op.add_column(table, sa.Column(name, sa.String(200), nullable=True,
                                       comment="full name from the identity records"), schema="intake")
        op.add_column(table, sa.Column(title, sa.String(200), nullable=True,
                                       comment="title (chức danh) from the identity records"), schema="intake")


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.drop_column(table, column, schema="intake")
