"""The control client library: what the flags allow, answered locally.

Used by the order plane (its guard) and by strategy workers (to skip decisions):

- `FlagView` is one snapshot, pure and frozen; `verdict(slug, role, reduces_position)`
  says whether a new order may go and, if not, which rule refused it.
- `FlagsFollower` follows `Control.WatchFlags`, reconnecting with backoff forever
  until stopped, keeps the latest snapshot and answers from it with no RPC.

Semantics (DESIGN.md): HALTED (global_lock) refuses every new order, reducing ones
included (cancels are not orders and are never asked about here); REDUCING
(global_entry_enabled=false) lets only position-reducing orders through;
global_exit_enabled=false holds exits; a strategy's own flags narrow further; an
unknown strategy slug has both flags enabled.

Failing closed: once the stream has been silent (no snapshot, no heartbeat) for
longer than `staleness_seconds`, entries are refused with `guard.control_stale`
while exits are still judged by the last snapshot (a stop-loss must not be held
because control is unreachable). Before any snapshot arrived nothing is known, not
even whether trading is halted, so every order is refused with `guard.no_snapshot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Literal

import grpc

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.channels import open_channel
from services.common.clock import Clock
from services.common.reconnect import PEER_BACKOFF, follow_forever

log = logging.getLogger(__name__)

Role = Literal["entry", "exit"]

RULE_HALTED = "guard.halted"
RULE_REDUCING = "guard.reducing"
RULE_EXITS_DISABLED = "guard.exits_disabled"
RULE_STRATEGY_ENTRY_DISABLED = "guard.strategy_entry_disabled"
RULE_STRATEGY_EXIT_DISABLED = "guard.strategy_exit_disabled"
RULE_CONTROL_STALE = "guard.control_stale"
RULE_NO_SNAPSHOT = "guard.no_snapshot"

_STATE_NAMES = {
    control_pb2.TRADING_STATE_ACTIVE: "ACTIVE",
    control_pb2.TRADING_STATE_REDUCING: "REDUCING",
    control_pb2.TRADING_STATE_HALTED: "HALTED",
}


def trading_state(*, global_lock: bool, global_entry_enabled: bool) -> str:
    """What the global flags add up to: HALTED (the lock wins), REDUCING (entries off) or ACTIVE.

    The one place this rule is written; the control plane reports it and the guard applies it.
    """
    if global_lock:
        return "HALTED"
    return "ACTIVE" if global_entry_enabled else "REDUCING"


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """Whether a new order may go; `rule` names what refused it ("" when allowed)."""

    allowed: bool
    rule: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyFlagView:
    slug: str
    entry_enabled: bool = True
    exit_enabled: bool = True
    note: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class FlagView:
    """Every flag at one version (a `FlagSnapshot`), with the guard rules."""

    version: int
    global_entry_enabled: bool = True
    global_exit_enabled: bool = True
    global_lock: bool = False
    strategies: Mapping[str, StrategyFlagView] = field(default_factory=lambda: MappingProxyType({}))
    updated_time: datetime | None = None
    lock_cancels_open_orders: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.strategies, MappingProxyType):
            object.__setattr__(self, "strategies", MappingProxyType(dict(self.strategies)))

    @classmethod
    def from_proto(cls, snapshot: control_pb2.FlagSnapshot) -> "FlagView":
        return cls(
            version=snapshot.version,
            global_entry_enabled=snapshot.global_entry_enabled,
            global_exit_enabled=snapshot.global_exit_enabled,
            global_lock=snapshot.global_lock,
            strategies={s.slug: StrategyFlagView(slug=s.slug, entry_enabled=s.entry_enabled,
                                                 exit_enabled=s.exit_enabled, note=s.note)
                        for s in snapshot.strategies},
            updated_time=snapshot.updated_time.ToDatetime(tzinfo=timezone.utc)
            if snapshot.HasField("updated_time") else None,
            lock_cancels_open_orders=snapshot.lock_cancels_open_orders,
        )

    @property
    def state(self) -> str:
        """ACTIVE, REDUCING or HALTED: what the global flags add up to."""
        return trading_state(global_lock=self.global_lock, global_entry_enabled=self.global_entry_enabled)

    def strategy(self, slug: str) -> StrategyFlagView:
        """The strategy's flags; an unknown slug has both enabled."""
        return self.strategies.get(slug) or StrategyFlagView(slug=slug)

    def verdict(self, slug: str, role: Role, reduces_position: bool) -> GuardVerdict:
        """May a new order of `slug`'s `role` worker go? Checked broadest rule first."""
        if role not in ("entry", "exit"):
            raise ValueError(f"role {role!r} is not 'entry' or 'exit'")
        where = f"(flags version {self.version})"
        if self.global_lock:
            return GuardVerdict(False, RULE_HALTED,
                                f"trading is HALTED by the global lock: no new orders of any kind {where}")
        if role == "exit" and not self.global_exit_enabled:
            return GuardVerdict(False, RULE_EXITS_DISABLED,
                                f"exits are held: global_exit_enabled is false {where}")
        if not self.global_entry_enabled and not reduces_position:
            return GuardVerdict(False, RULE_REDUCING,
                                f"trading is REDUCING (global_entry_enabled is false): only orders that reduce "
                                f"a position may go {where}")
        flags = self.strategy(slug)
        if role == "entry" and not flags.entry_enabled:
            return GuardVerdict(False, RULE_STRATEGY_ENTRY_DISABLED,
                                f"strategy {slug!r} has entries disabled{_note(flags)} {where}")
        if role == "exit" and not flags.exit_enabled:
            return GuardVerdict(False, RULE_STRATEGY_EXIT_DISABLED,
                                f"strategy {slug!r} has exits disabled{_note(flags)} {where}")
        return GuardVerdict(True, "", f"allowed: trading is {self.state} {where}")


def _note(flags: StrategyFlagView) -> str:
    return f" ({flags.note})" if flags.note else ""


class _StreamSilent(Exception):
    """Nothing arrived for longer than the staleness: the connection may be dead."""


class FlagsFollower:
    """Follows Control.WatchFlags and answers guard questions from the latest snapshot."""

    def __init__(self, address: str, *, token: str | None = None, staleness_seconds: float = 5.0,
                 clock: Clock | None = None, max_backoff_seconds: float = PEER_BACKOFF, guard: str = "") -> None:
        if not staleness_seconds > 0:
            raise ValueError(f"staleness_seconds must be positive, not {staleness_seconds}")
        self._address = address
        self._token = token
        self._staleness = staleness_seconds
        self._clock = clock
        self._max_backoff = max_backoff_seconds
        self._view: FlagView | None = None
        self._last_heard: float | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listeners: set[asyncio.Queue] = set()
        self._stopped = False
        # A guard (the order plane) names itself and acknowledges each version it enforces.
        self.guard = guard

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopped = False
            self._task = asyncio.create_task(self._follow(), name=f"flags-follower {self._address}")

    async def stop(self) -> None:
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queue in tuple(self._listeners):
            queue.put_nowait(None)

    async def wait_ready(self, timeout: float | None = None) -> FlagView:
        """Waits for the first snapshot; raises TimeoutError when none came within `timeout`."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self._view is not None
        return self._view

    async def __aenter__(self) -> "FlagsFollower":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # --- answers (local, no RPC) -----------------------------------------------------

    def view(self) -> FlagView | None:
        return self._view

    def _now(self) -> float:
        if self._clock is None:
            return time.monotonic()
        monotonic = getattr(self._clock, "monotonic", None)
        return monotonic() if monotonic is not None else self._clock.now().timestamp()

    def is_stale(self) -> bool:
        """True when nothing (snapshot or heartbeat) arrived for longer than the staleness."""
        return self._last_heard is None or self._now() - self._last_heard > self._staleness

    def verdict(self, slug: str, role: Role, reduces_position: bool) -> GuardVerdict:
        view = self._view
        if view is None:
            return GuardVerdict(False, RULE_NO_SNAPSHOT,
                                f"no flag snapshot from control at {self._address} yet: refusing every order "
                                "until control answers")
        if role == "entry" and self.is_stale():
            silent = self._now() - (self._last_heard or 0.0)
            return GuardVerdict(False, RULE_CONTROL_STALE,
                                f"control at {self._address} has been silent for {silent:.1f} s (staleness "
                                f"{self._staleness:g} s): entries fail closed until it answers again")
        return view.verdict(slug, role, reduces_position)

    def can_enter(self, slug: str) -> bool:
        return self.verdict(slug, "entry", False).allowed

    def can_exit(self, slug: str) -> bool:
        return self.verdict(slug, "exit", True).allowed

    async def changes(self) -> AsyncIterator[FlagView]:
        """New views as their versions arrive (the current one first, if any).

        Views are full state, so a consumer slower than the changes gets the latest
        view and may skip intermediate versions; it never gets an older one after a newer.
        """
        queue: asyncio.Queue[FlagView | None] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            last_version = -1
            if self._view is not None:
                last_version = self._view.version
                yield self._view
            while not self._stopped:
                view = await queue.get()
                while view is not None and not queue.empty():  # coalesce to the latest
                    view = queue.get_nowait()
                if view is None:
                    return
                if view.version > last_version:
                    last_version = view.version
                    yield view
        finally:
            self._listeners.discard(queue)

    async def acknowledge(self, version: int) -> None:
        """Tells control this guard now enforces `version` (SetGlobalFlags waits for it).

        Best effort: control that cannot be reached learns it from the next acknowledgement,
        and a change nobody acknowledged is reported as not enforced, never as enforced.
        """
        if not self.guard:
            raise ValueError("only a follower built with guard=<name> acknowledges versions")
        try:
            async with open_channel(self._address, token=self._token, traced=False) as channel:
                await control_pb2_grpc.ControlStub(channel).AckFlags(
                    control_pb2.AckFlagsRequest(guard=self.guard, version=version), timeout=self._staleness)
        except grpc.RpcError as exc:
            log.warning("could not acknowledge a flag version to control", extra={
                "address": self._address, "version": version, "error": getattr(exc, "details", lambda: str(exc))()})

    # --- the stream ------------------------------------------------------------------

    async def _follow(self) -> None:
        await follow_forever(self._session, what="control", address=self._address, log=log,
                             max_backoff=self._max_backoff, running=lambda: not self._stopped)

    async def _session(self) -> bool:
        """One WatchFlags call; True when it delivered at least one message before it broke."""
        delivered = False
        # A new channel per session: a channel that failed many times backs off on
        # its own (up to minutes), which would delay the recovery after a restart.
        channel = open_channel(self._address, token=self._token, traced=False)
        try:
            call = control_pb2_grpc.ControlStub(channel).WatchFlags(control_pb2.WatchFlagsRequest(guard=self.guard))
            try:
                while True:
                    try:
                        message = await asyncio.wait_for(call.read(), timeout=self._staleness)
                    except asyncio.TimeoutError:
                        raise _StreamSilent() from None
                    except grpc.RpcError:
                        if delivered:
                            log.warning("flags stream broke; reconnecting", extra={"address": self._address})
                            return True
                        raise
                    if message is grpc.aio.EOF:
                        return delivered  # ended empty: follow_forever backs off from it (StreamEndedEmpty)
                    self._receive(message, first=not delivered)
                    delivered = True
            finally:
                call.cancel()
        except _StreamSilent:
            if delivered:
                return True
            raise
        finally:
            await channel.close()

    def _receive(self, message: control_pb2.WatchFlagsResponse, *, first: bool) -> None:
        self._last_heard = self._now()
        current = self._view
        version = message.snapshot.version
        if current is not None and version == current.version:
            return  # a heartbeat, or the version we already have (after a reconnect)
        if current is not None and version < current.version and not first:
            return  # never step back within one stream
        # The first snapshot of a session is the server's truth, even if lower (a
        # control reset to a new database); within a stream versions only go up.
        view = FlagView.from_proto(message.snapshot)
        self._view = view
        self._ready.set()
        for queue in tuple(self._listeners):
            queue.put_nowait(view)
