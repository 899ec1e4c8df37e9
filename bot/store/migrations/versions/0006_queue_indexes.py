"""indexes that keep the dispatcher and the webhook linear in the size of the tables

- ``ix_message_outbox`` (status, direction, created_at, position, id) replaces
  ``ix_message_status_direction``: the outbox's claim and reconciliation walk
  queued (or in-flight) outbound texts in the order they were written and stop
  after one batch, instead of sorting the whole queue for every batch;
- ``ix_conversation_phone_active`` (phone, active): "has this number a
  questionnaire open?" for every dispatch and every answer. PostgreSQL could
  use the partial unique index for it, SQLite cannot (``active = 1`` does not
  match the index's ``WHERE active``), so it scanned the whole table.

Only indexes: no table is rebuilt, so no foreign key is touched on SQLite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_message_outbox",
        "message",
        ["status", "direction", "created_at", "position", "id"],
        unique=False,
    )
    op.drop_index("ix_message_status_direction", table_name="message")
    op.create_index(
        "ix_conversation_phone_active", "conversation", ["phone", "active"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_phone_active", table_name="conversation")
    op.create_index("ix_message_status_direction", "message", ["status", "direction"], unique=False)
    op.drop_index("ix_message_outbox", table_name="message")
