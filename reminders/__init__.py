"""Confirmations and reminders by SMS and voice call on RQ workers."""
