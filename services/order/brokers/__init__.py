"""Broker adapters: one `Broker` protocol, the paper venue, and the retrying gateway."""
