"""Wiring: settings, database, app factory, command line. Holds no business rules."""
