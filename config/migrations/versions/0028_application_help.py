"""application help (申請補助) recorded at the counter, and the day's handover sheets of the
ward's copies of the printed application details

Revision ID: 0028
Revises: 0025
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handover_sheet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("receiver_id", sa.Integer(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("staff_id <> receiver_id", name=op.f("ck_handover_sheet_two_people")),
        sa.CheckConstraint("copies >= 0", name=op.f("ck_handover_sheet_copies_counted")),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venue.id"], name=op.f("fk_handover_sheet_venue_id_venue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_sheet")),
    )
    op.create_index("ix_handover_sheet_day", "handover_sheet", ["venue_id", "day"])
    op.create_table(
        "application_help",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("walk_in_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("copy_given", sa.Boolean(), nullable=False),
        sa.Column("ward_copies", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(booking_id IS NULL) <> (walk_in_id IS NULL)",
            name=op.f("ck_application_help_one_visit"),
        ),
        sa.CheckConstraint(
            "sent OR (ward_copies = 0 AND NOT copy_given)",
            name=op.f("ck_application_help_copies_if_sent"),
        ),
        sa.CheckConstraint("ward_copies >= 0", name=op.f("ck_application_help_copies_counted")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_application_help_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["walk_in_id"], ["walk_in.id"], name=op.f("fk_application_help_walk_in_id_walk_in")
        ),
        sa.ForeignKeyConstraint(
            ["sheet_id"],
            ["handover_sheet.id"],
            name=op.f("fk_application_help_sheet_id_handover_sheet"),
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venue.id"], name=op.f("fk_application_help_venue_id_venue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_help")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_application_help_booking_id")),
        sa.UniqueConstraint("walk_in_id", name=op.f("uq_application_help_walk_in_id")),
    )
    op.create_index(
        op.f("ix_application_help_sheet_id"), "application_help", ["sheet_id"], unique=False
    )
    op.create_index("ix_application_help_open", "application_help", ["venue_id", "day", "staff_id"])


def downgrade() -> None:
    op.drop_index("ix_application_help_open", table_name="application_help")
    op.drop_index(op.f("ix_application_help_sheet_id"), table_name="application_help")
    op.drop_table("application_help")
    op.drop_index("ix_handover_sheet_day", table_name="handover_sheet")
    op.drop_table("handover_sheet")
