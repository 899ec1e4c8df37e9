"""the dispatcher walks due invitations in index order: (status, due_at, id)

``dispatch_due`` pages through pending invitations ordered by (due_at, id),
after the last one of the previous page. With ``ix_invitation_status_due``
(status, due_at) SQLite read every pending due row and sorted it by id for each
page ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"): invitations imported
together share one due time, so a list of 20,000 cost 100 sorts of up to 20,000
rows. With id in the index each page is one range read of 200 rows, on SQLite
and PostgreSQL alike.

Only an index: no table is rebuilt, so no foreign key is touched on SQLite.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_invitation_due_walk", "invitation", ["status", "due_at", "id"], unique=False
    )
    op.drop_index("ix_invitation_status_due", table_name="invitation")


def downgrade() -> None:
    op.create_index("ix_invitation_status_due", "invitation", ["status", "due_at"], unique=False)
    op.drop_index("ix_invitation_due_walk", table_name="invitation")
