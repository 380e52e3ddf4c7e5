"""Every package's tables in one MetaData, for Alembic."""

from __future__ import annotations

import agent_console.models  # noqa: F401
import booking.models  # noqa: F401  (registers the tables)
import calendar_sync.models  # noqa: F401
import ivr.models  # noqa: F401
import reminders.models  # noqa: F401
from booking.base import Base

metadata = Base.metadata
