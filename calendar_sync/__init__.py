"""iCalendar feeds and pushes to satellite counters (issue 7)."""
