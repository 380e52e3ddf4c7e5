"""The phone line: Twilio voice webhooks (issue 4). Calls booking.service like every channel."""
