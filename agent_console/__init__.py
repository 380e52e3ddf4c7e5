"""The agent console under /console/: staff sign-in, the call queue and screen pop, booking on a
caller's behalf, the counter's pages, the audit log and the reports."""
