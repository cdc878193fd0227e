"""The control plane (guard plane): what may trade, never what to trade.

Holds the global entry/exit flags, the global lock (kill switch) and per-strategy
flags, durable in PostgreSQL (schema `control`), audited field by field, and pushed
to every subscriber by `WatchFlags` as full, versioned snapshots.
"""
