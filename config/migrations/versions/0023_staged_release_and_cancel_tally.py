"""staged release (段階的公開) of booking days, and each phone number's cancellations a month

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "day_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slots_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slots_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=True),
        sa.Column("service_id", sa.String(length=40), nullable=True),
        sa.Column("born_from", sa.Integer(), nullable=True),
        sa.Column("born_to", sa.Integer(), nullable=True),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("slots_until > slots_from", name=op.f("ck_day_release_days_in_order")),
        sa.CheckConstraint(
            "born_from IS NULL OR born_to IS NULL OR born_from <= born_to",
            name=op.f("ck_day_release_years_in_order"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_day_release_service_id_service")
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venue.id"], name=op.f("fk_day_release_venue_id_venue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_day_release")),
    )
    op.create_index("ix_day_release_slots", "day_release", ["slots_from", "slots_until"])
    op.create_table(
        "cancel_tally",
        sa.Column("phone_hmac", sa.String(length=64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("cancels", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("phone_hmac", "month", name=op.f("pk_cancel_tally")),
    )


def downgrade() -> None:
    op.drop_table("cancel_tally")
    op.drop_index("ix_day_release_slots", table_name="day_release")
    op.drop_table("day_release")
