"""erasure records, audit chain anchor, bookings erased

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24 02:30:03.166082
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasure_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_record")),
    )
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("anchor_hash", sa.String(length=64), server_default="0" * 64, nullable=False)
        )
        batch_op.add_column(sa.Column("purged", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("purge_before", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    _allow_purge()


def _allow_purge() -> None:
    """The audit log stays append-only, except that events older than the purge's cutoff (set
    on audit_head by the retention run, in the same transaction) may be deleted."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE'
                   AND OLD.at < (SELECT purge_before FROM audit_head WHERE id = 1) THEN
                    RETURN OLD;
                END IF;
                RAISE EXCEPTION 'audit_event is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        op.execute(
            "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
            "WHEN (SELECT purge_before FROM audit_head WHERE id = 1) IS NULL "
            "OR OLD.at >= (SELECT purge_before FROM audit_head WHERE id = 1) "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
        )


def _forbid_delete() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_event is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        op.execute(
            "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
        )


def downgrade() -> None:
    _forbid_delete()
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_column("erased_at")

    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("purge_before")
        batch_op.drop_column("purged")
        batch_op.drop_column("anchor_hash")

    op.drop_table("erasure_record")
