"""iCalendar feeds, the import of the ward's calendar, and the push to satellite counters."""
