"""The analysis client library: a strategy's settings, and a follower of their stream.

Used by the analysis plane (which publishes them) and by strategy workers (which apply
them at their next decision):

- `StrategySettings` is one version of a strategy's settings, frozen: the parameters set
  through analysis (text, merged over the worker's start parameters), the allocation
  (size multiplier, entries on or off) and whether an operator froze them. Version 0
  means analysis has set nothing.
- `SettingsFollower` follows `Analysis.WatchStrategySettings` for one strategy,
  reconnecting with backoff forever until stopped, and keeps the latest settings.

Settings are advice inside limits, never a guard: a worker whose analysis plane is gone
keeps the last settings it received (or its start parameters) and trades on; the control
flags and the order plane's risk checks stay what stops trading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

import grpc

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from services.common.channels import open_channel
from services.common.reconnect import follow_forever
from services.common.timeutil import optional_from_timestamp, to_timestamp
from services.common.wire import trimmed_decimal_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Allocation:
    """How much of its size a strategy trades, and whether it may enter at all."""

    size_multiplier: Decimal = Decimal(1)
    entries_enabled: bool = True
    reason: str = "full size"
    #: The policy judges only trades closed after this (when it last turned entries off); None: all.
    judged_since: datetime | None = None

    def same_as(self, other: "Allocation") -> bool:
        """Equal in effect (the reason is only words)."""
        return self.size_multiplier == other.size_multiplier and self.entries_enabled == other.entries_enabled

    def describe(self) -> str:
        return f"x{trimmed_decimal_text(self.size_multiplier)}" if self.entries_enabled else "entries off"

    def to_proto(self) -> analysis_pb2.Allocation:
        message = analysis_pb2.Allocation(size_multiplier=trimmed_decimal_text(self.size_multiplier),
                                          entries_enabled=self.entries_enabled, reason=self.reason)
        if self.judged_since is not None:
            message.judged_since.CopyFrom(to_timestamp(self.judged_since))
        return message

    @classmethod
    def from_proto(cls, message: analysis_pb2.Allocation) -> "Allocation":
        return cls(size_multiplier=Decimal(message.size_multiplier or "1"), entries_enabled=message.entries_enabled,
                   reason=message.reason, judged_since=optional_from_timestamp(message, "judged_since"))


FULL_SIZE = Allocation()


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategySettings:
    slug: str
    version: int = 0
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    params_version: int = 0
    allocation: Allocation = FULL_SIZE
    allocation_version: int = 0
    frozen: bool = False
    updated_time: datetime | None = None
    updated_by: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.params, MappingProxyType):
            object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def to_proto(self) -> analysis_pb2.StrategySettings:
        return analysis_pb2.StrategySettings(
            strategy_slug=self.slug, version=self.version, params=dict(self.params),
            params_version=self.params_version, allocation=self.allocation.to_proto(),
            allocation_version=self.allocation_version, frozen=self.frozen,
            updated_time=to_timestamp(self.updated_time), updated_by=self.updated_by, reason=self.reason)

    @classmethod
    def from_proto(cls, message: analysis_pb2.StrategySettings) -> "StrategySettings":
        allocation = (Allocation.from_proto(message.allocation) if message.HasField("allocation") else FULL_SIZE)
        return cls(slug=message.strategy_slug, version=message.version, params=dict(message.params),
                   params_version=message.params_version, allocation=allocation,
                   allocation_version=message.allocation_version, frozen=message.frozen,
                   updated_time=optional_from_timestamp(message, "updated_time"), updated_by=message.updated_by,
                   reason=message.reason)


class SettingsFollower:
    """Follows Analysis.WatchStrategySettings for one strategy; `latest()` answers locally."""

    def __init__(self, address: str, slug: str, *, start_params: Mapping[str, str] | None = None,
                 token: str | None = None, silence_seconds: float = 10.0, max_backoff_seconds: float = 5.0) -> None:
        """`start_params`: the worker's own, which analysis checks parameter changes against."""
        self._address = address
        self.slug = slug
        self._start_params = dict(start_params or {})
        self._token = token
        self._silence = silence_seconds
        self._max_backoff = max_backoff_seconds
        self._latest: StrategySettings | None = None
        self._ready = asyncio.Event()

    async def run(self) -> None:
        """Follows the stream until cancelled (the worker runs it as a task of its own)."""
        await follow_forever(self._session, what="analysis", address=self._address, log=log,
                             max_backoff=self._max_backoff)

    async def wait_ready(self, timeout: float | None = None) -> StrategySettings:
        """Waits for the first settings; raises TimeoutError when none came within `timeout`."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self._latest is not None
        return self._latest

    def latest(self) -> StrategySettings | None:
        return self._latest

    async def _session(self) -> bool:
        """One WatchStrategySettings call; True when it delivered something before it ended."""
        delivered = False
        # A new channel per session, as the flags follower does: a channel that failed many
        # times backs off on its own, which would delay the recovery after a restart.
        channel = open_channel(self._address, token=self._token, traced=False)
        call = analysis_pb2_grpc.AnalysisStub(channel).WatchStrategySettings(
            analysis_pb2.WatchStrategySettingsRequest(strategy_slug=self.slug, start_params=self._start_params))
        try:
            # Heartbeats come every second: silence past `silence_seconds` means a dead connection.
            async with asyncio.timeout(self._silence) as silence:
                async for message in call:
                    self._receive(message.settings)
                    delivered = True
                    silence.reschedule(asyncio.get_running_loop().time() + self._silence)
        except (TimeoutError, grpc.RpcError):
            if not delivered:
                raise
            log.warning("settings stream broke or went silent; reconnecting", extra={"address": self._address})
        finally:
            call.cancel()
            await channel.close()
        return delivered  # ended empty: follow_forever backs off from it (StreamEndedEmpty)

    def _receive(self, message: analysis_pb2.StrategySettings) -> None:
        current = self._latest
        if current is not None and message.version == current.version:
            return  # a heartbeat, or the version we already have (after a reconnect)
        settings = StrategySettings.from_proto(message)
        if current is not None and settings.version != current.version:
            log.info("strategy settings changed", extra={
                "strategy": self.slug, "version": settings.version, "params": dict(settings.params),
                "allocation": settings.allocation.describe(), "frozen": settings.frozen})
        self._latest = settings
        self._ready.set()


__all__ = ["Allocation", "FULL_SIZE", "SettingsFollower", "StrategySettings"]
