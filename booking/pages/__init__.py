"""The residents' 24-hour web booking: server-rendered pages over booking.service."""
