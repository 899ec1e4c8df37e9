"""outbox claims: a claim token per unsent text, its lease, the outstanding hand-over

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claim_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(
            sa.Column("claimed_until", bot.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("handed_over_at", bot.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_message_claim_token"), ["claim_token"], unique=False)
        batch_op.create_index("ix_message_phone_created", ["phone", "created_at"], unique=False)
    # Texts left "sending" by the previous outbox were handed over at their claim, as far as
    # anyone can tell: they are looked up before they are ever sent again.
    op.execute(
        "UPDATE message SET handed_over_at = updated_at"
        " WHERE direction = 'outbound' AND status = 'sending' AND provider_sid IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_phone_created")
        batch_op.drop_index(batch_op.f("ix_message_claim_token"))
        batch_op.drop_column("handed_over_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_token")
