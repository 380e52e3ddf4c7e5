"""faq entries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 22:39:11.553528
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAQ = [
    {
        "id": "hours",
        "sort_order": 1,
        "title_ja": "受付時間",
        "title_en": "opening hours",
        "answer_ja": "窓口の受付は、平日の午前8時30分から午後5時までです。本庁舎では、第2、第4日曜日にも、午前9時から午後5時まで、カードのお渡しを行っています。電話とインターネットの予約は、24時間受け付けています。",
        "answer_en": "The counters are open on weekdays from 8:30 AM to 5 PM. The main office also hands out cards on the second and fourth Sundays, from 9 AM to 5 PM. Bookings by phone and on the web are taken 24 hours a day.",
        "active": True,
    },
    {
        "id": "venues",
        "sort_order": 2,
        "title_ja": "会場",
        "title_en": "the places",
        "answer_ja": "会場は、本庁舎1階のマイナンバーカード交付窓口と、10か所の特別出張所です。特別出張所では、カードの受け取り、暗証番号の再設定、電子証明書の更新ができます。申請のお手伝いは、本庁舎のみです。",
        "answer_en": "The places are the My Number card counter on the first floor of the main office, and ten branch offices. Branch offices hand out cards, reset PINs and renew certificates. Help with applications is at the main office only.",
        "active": True,
    },
    {
        "id": "bring",
        "sort_order": 3,
        "title_ja": "お持ちいただくもの",
        "title_en": "what to bring",
        "answer_ja": "カードの受け取りには、交付通知書のはがき、通知カード、本人確認書類をお持ちください。暗証番号の再設定と電子証明書の更新には、マイナンバーカードをお持ちください。",
        "answer_en": "To pick up a card, bring the notice postcard, your notification card and an identity document. To reset a PIN or renew a certificate, bring your My Number card.",
        "active": True,
    },
    {
        "id": "how_long",
        "sort_order": 4,
        "title_ja": "カードができるまでの期間",
        "title_en": "how long a card takes",
        "answer_ja": "申請から、交付通知書のはがきが届くまで、およそ1か月かかります。はがきが届いてから、予約をしてお越しください。",
        "answer_en": "It takes about a month from the application until the notice postcard arrives. Please book and come after it has arrived.",
        "active": True,
    },
]


def upgrade() -> None:
    op.create_table(
        "faq_entry",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("title_ja", sa.String(length=100), nullable=False),
        sa.Column("title_en", sa.String(length=100), nullable=False),
        sa.Column("answer_ja", sa.Text(), nullable=False),
        sa.Column("answer_en", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_entry")),
    )
    # The answers the IVR spoke from its prompt catalogue until now, as the first entries.
    faq = sa.table(
        "faq_entry",
        sa.column("id", sa.String),
        sa.column("sort_order", sa.Integer),
        sa.column("title_ja", sa.String),
        sa.column("title_en", sa.String),
        sa.column("answer_ja", sa.Text),
        sa.column("answer_en", sa.Text),
        sa.column("active", sa.Boolean),
    )
    op.bulk_insert(faq, FAQ)


def downgrade() -> None:
    op.drop_table("faq_entry")
