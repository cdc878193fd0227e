"""Conversions between aware datetimes and protobuf Timestamps."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(moment: datetime | None) -> Timestamp:
    stamp = Timestamp()
    if moment is not None:
        if moment.tzinfo is None:
            raise ValueError("naive datetimes are not allowed; use UTC")
        stamp.FromDatetime(moment.astimezone(timezone.utc))
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=timezone.utc)


def optional_from_timestamp(message, field_name: str) -> datetime | None:
    """None when the Timestamp field is unset, so "no bound" differs from the epoch."""
    return from_timestamp(getattr(message, field_name)) if message.HasField(field_name) else None
