"""patient search keys: finding a patient is an index range, not a scan of the practice

Three columns on ``patient``, filled for the patients already enrolled:

- ``name_key``: the name without case, accents or punctuation; the patient
  list's order and a search by the start of the name;
- ``family_key``: the same with the last word first; a search by the start of
  the surname;
- ``phone_key``: the mobile's digits reversed; a search by its last digits is
  a prefix of it.

On PostgreSQL they compare byte by byte (``COLLATE "C"``), so a prefix is
exactly an index range whatever the database's locale. With an index on
(practice_id, nhs_number) for the exact NHS number. Each index ends with the
id, so the union of a search's ranges reads no table rows. Columns are added with a
default, so SQLite does not rebuild the table (no foreign key is touched).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 21:40:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = (("name_key", 120), ("family_key", 120), ("phone_key", 16))


def _key_type(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _keys(name: str, phone: str) -> dict[str, str]:
    """As ``bot.store.models.patient_search_keys`` was when this revision was written."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    digits = "".join(ch for ch in phone if ch.isdigit())
    return {
        "name_key": " ".join(words)[:120],
        "family_key": " ".join(words[-1:] + words[:-1])[:120],
        "phone_key": digits[::-1][:16],
    }


def upgrade() -> None:
    for name, length in KEYS:
        op.add_column(
            "patient",
            sa.Column(name, _key_type(length), nullable=False, server_default=""),
        )
    patient = sa.table(
        "patient",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("phone", sa.String),
        *(sa.column(name, sa.String) for name, _length in KEYS),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(patient.c.id, patient.c.name, patient.c.phone)).all()
    if rows:
        connection.execute(
            patient.update()
            .where(patient.c.id == sa.bindparam("row_id"))
            .values({name: sa.bindparam(name) for name, _length in KEYS}),
            [{"row_id": id_, **_keys(name, phone)} for id_, name, phone in rows],
        )
    op.create_index(
        "ix_patient_practice_name_key", "patient", ["practice_id", "name_key", "id"], unique=False
    )
    op.create_index(
        "ix_patient_practice_family_key",
        "patient",
        ["practice_id", "family_key", "id"],
        unique=False,
    )
    op.create_index(
        "ix_patient_practice_phone_key", "patient", ["practice_id", "phone_key", "id"], unique=False
    )
    op.create_index(
        "ix_patient_practice_nhs_number",
        "patient",
        ["practice_id", "nhs_number", "id"],
        unique=False,
    )


def downgrade() -> None:
    for index in ("nhs_number", "phone_key", "family_key", "name_key"):
        op.drop_index(f"ix_patient_practice_{index}", table_name="patient")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        for name, _length in reversed(KEYS):
            batch_op.drop_column(name)
