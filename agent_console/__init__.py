"""The agent console under /console/ (issue 5)."""
