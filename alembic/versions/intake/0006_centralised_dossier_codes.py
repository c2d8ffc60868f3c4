"""dossier codes of nationally centralised services (Circular 04/2025): their own daily series

From 25 January 2026 (Circular 04/2025/TT-VPCP Art. 23.2, adding cl. 3 to Circular 03/2025 Art. 13)
a dossier of a service centralised nationwide is coded `<deciding body>-YYMMDD-AA<number>`: AA is a
digit pair from the code of the body that owns the central system, the number has at least 4 digits
and no upper bound. Which services are centralised, and their AA, is data: `centralised_services`.

The daily counter gains `series` ('' for the Circular 01/2018 code of the receiving agency, AA for
the centralised code of the deciding body): existing rows keep '' and their numbering. The 9,999
limit stays for the 4-digit code only.

Revision ID: intake_0006
Revises: intake_0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0006"
down_revision: str | None = "intake_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("daily_counters", sa.Column(
        "series", sa.String(2), nullable=False, server_default="",
        comment="'': <receiving agency>-YYMMDD-XXXX; AA: <deciding body>-YYMMDD-AAXXXX (Circular 04/2025)"),
        schema="intake")
    op.drop_constraint("daily_counters_pkey", "daily_counters", schema="intake", type_="primary")
    op.create_primary_key("daily_counters_pkey", "daily_counters", ["agency_code", "day", "series"],
                          schema="intake")
    op.drop_constraint("daily_counters_at_most_9999", "daily_counters", schema="intake", type_="check")
    op.create_check_constraint("daily_counters_at_most_9999", "daily_counters",
                               "series <> '' OR last_number <= 9999", schema="intake")
    op.create_check_constraint("daily_counters_series_digits", "daily_counters", "series ~ '^([0-9]{2})?$'",
                               schema="intake")
    op.create_table(
        "centralised_services",
        sa.Column("procedure_code", sa.String(30), primary_key=True),
        sa.Column("owner_digits", sa.String(2), nullable=False,
                  comment="AA: 2 digits of the e-ID code of the body owning the central system"),
        sa.Column("since", sa.Date, nullable=False, server_default=sa.text("'2026-01-25'"),
                  comment="first receipt day coded in the centralised format (never before 2026-01-25)"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("owner_digits ~ '^[0-9]{2}$'", name="centralised_services_owner_digits"),
        schema="intake",
        comment="procedures provided through a nationally centralised system (Circular 04/2025)",
    )


def downgrade() -> None:
    op.drop_table("centralised_services", schema="intake")
    op.execute("DELETE FROM intake.daily_counters WHERE series <> ''")
    op.drop_constraint("daily_counters_series_digits", "daily_counters", schema="intake", type_="check")
    op.drop_constraint("daily_counters_at_most_9999", "daily_counters", schema="intake", type_="check")
    op.create_check_constraint("daily_counters_at_most_9999", "daily_counters", "last_number <= 9999",
                               schema="intake")
    op.drop_constraint("daily_counters_pkey", "daily_counters", schema="intake", type_="primary")
    op.create_primary_key("daily_counters_pkey", "daily_counters", ["agency_code", "day"], schema="intake")
    op.drop_column("daily_counters", "series", schema="intake")
