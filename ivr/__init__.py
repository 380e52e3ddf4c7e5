"""The phone line: Twilio voice webhooks. Calls booking.service like every channel."""
