"""which dossiers a file is attached to (who besides its uploader may read it)

A file is read by its uploader and by the staff of the agencies handling a dossier it is attached
to; the links of the dossiers and supplements received so far are filled in from their documents.

Revision ID: intake_0005
Revises: intake_0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0005"
down_revision: str | None = "intake_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO intake.file_links (file_id, dossier_code)
SELECT DISTINCT f.id, src.code
FROM (SELECT code, documents FROM intake.dossiers
      UNION ALL SELECT dossier_code, documents FROM intake.supplements) AS src,
     jsonb_array_elements(src.documents) AS doc,
     jsonb_array_elements_text(coalesce(doc->'file_ids', '[]'::jsonb)) AS fid
JOIN intake.files f ON f.id = fid
ON CONFLICT DO NOTHING
"""


def upgrade() -> None:
    op.create_table(
        "file_links",
        sa.Column("file_id", sa.String(36), primary_key=True),
        sa.Column("dossier_code", sa.String(40), primary_key=True),
        schema="intake",
        comment="which dossiers (or their supplements) a file is attached to: the staff of their agencies may "
                "read it",
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("file_links", schema="intake")
