"""The slot engine: venues, sessions, slots, holds, bookings. Knows no channel."""
