"""urgent alerts: fallback to the practice's contact e-mail, and what became of each notice

- ``alert.fallback_at``: when the practice's contact e-mail and escalation
  contacts were told because no on-duty clinician could be;
- ``alert_notification.recipient_type`` (``staff`` or ``practice_contact``),
  with ``recipient_id`` now empty for the practice's contact e-mail;
- ``alert_notification.message_id``: a text's row in the message log, where
  its delivery reports land.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_FK = "fk_alert_notification_message_id_message"


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fallback_at", bot.store.types.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "recipient_type",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="staff",  # every notice so far went to a member of staff
            )
        )
        batch_op.add_column(
            sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.alter_column(
            "recipient_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True
        )
        batch_op.create_foreign_key(MESSAGE_FK, "message", ["message_id"], ["id"])

    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.alter_column(
            "recipient_type",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=20),
            server_default=None,  # the application always says who a notice is for
        )


def downgrade() -> None:
    # Notices to the practice's contact e-mail have no member of staff to point at.
    op.execute("DELETE FROM alert_notification WHERE recipient_id IS NULL")
    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.drop_constraint(MESSAGE_FK, type_="foreignkey")
        batch_op.alter_column(
            "recipient_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False
        )
        batch_op.drop_column("message_id")
        batch_op.drop_column("recipient_type")

    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("fallback_at")
