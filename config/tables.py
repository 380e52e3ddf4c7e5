"""Every package's tables in one MetaData, for Alembic."""

from __future__ import annotations

import booking.models  # noqa: F401  (registers the tables)
from booking.base import Base

metadata = Base.metadata
