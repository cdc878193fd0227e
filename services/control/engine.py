"""The control engine: applies flag changes one at a time and pushes each new version.

Ports are passed in (repository, clock), so the engine holds the rules of *how* a
change happens (serialized, audited in the same transaction, published after the
commit in version order) while `state` holds *what* a change is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from opentelemetry import trace

from quantmesh.common.v1 import common_pb2
from services.common.audit import AuditIdentity
from services.common.clock import Clock
from services.common.telemetry import current_trace_context
from services.control.repository import ChangeMeta, FlagsRepository
from services.control.guards import Enforcement, GuardRegistry
from services.control.watchers import SnapshotFanout, Subscription
from services.control.state import (AuditEntry, AuditQuery, FlagState, GlobalChange, Plan, StrategyChange,
                                    plan_global, plan_strategy, validate_global, validate_strategy)

_tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Caller:
    """Who asks for a change and from where (auth identity and peer address)."""

    actor: str
    role: str
    source: str


@dataclass(frozen=True, slots=True)
class Published:
    """A snapshot as pushed to watchers, with the trace of the change that produced it."""

    state: FlagState
    trace_context: common_pb2.TraceContext


class ControlEngine:
    def __init__(self, repository: FlagsRepository, initial: FlagState, *, clock: Clock,
                 watch_queue_size: int = 1000, guard_ack_seconds: float = 2.0,
                 identity: AuditIdentity | None = None) -> None:
        self._repository = repository
        self._clock = clock
        self._identity = identity or AuditIdentity(plane="control", mode="paper", site="", session="")
        self.guards = GuardRegistry()
        self._guard_ack_seconds = guard_ack_seconds
        self._write_lock = asyncio.Lock()
        self._published = Published(initial, common_pb2.TraceContext())
        self._watchers: SnapshotFanout[Published] = SnapshotFanout(queue_size=watch_queue_size)

    @classmethod
    async def open(cls, repository: FlagsRepository, *, clock: Clock, watch_queue_size: int = 1000,
                   guard_ack_seconds: float = 2.0, identity: AuditIdentity | None = None) -> "ControlEngine":
        return cls(repository, await repository.load(), clock=clock, watch_queue_size=watch_queue_size,
                   guard_ack_seconds=guard_ack_seconds, identity=identity)

    @property
    def current(self) -> Published:
        return self._published

    @property
    def watcher_count(self) -> int:
        return self._watchers.subscriber_count

    async def set_global(self, change: GlobalChange, caller: Caller) -> FlagState:
        validate_global(change)  # before taking the lock: a bad request never waits behind writers
        with _tracer.start_as_current_span("control.set_global_flags"):
            return await self._apply(lambda current, now: plan_global(current, change, now), change.reason, caller)

    async def set_strategy(self, change: StrategyChange, caller: Caller) -> FlagState:
        validate_strategy(change)
        with _tracer.start_as_current_span("control.set_strategy_flags") as span:
            span.set_attribute("quantmesh.strategy", change.slug)
            return await self._apply(lambda current, now: plan_strategy(current, change, now), change.reason, caller)

    async def _apply(self, plan_for, reason: str, caller: Caller) -> FlagState:
        async with self._write_lock:
            now = self._clock.now()
            async with self._repository.change() as tx:
                current = await tx.load_for_update()
                plan: Plan = plan_for(current, now)
                if plan.changes_nothing:
                    # Documented: a Set that changes nothing returns the current
                    # snapshot, writes no audit row and makes no new version.
                    return current
                await tx.save(plan.after, plan.strategy, plan.changes,
                              ChangeMeta(actor=caller.actor, role=caller.role, source=caller.source,
                                         reason=reason, time=now, mode=self._identity.mode,
                                         site=self._identity.site, session=self._identity.session))
            # Published after the commit and still under the lock, so watchers see
            # only durable versions, in order.
            self._published = Published(plan.after, current_trace_context())
            self._watchers.publish(plan.after.version, self._published)
            return plan.after

    async def enforcement(self, version: int) -> Enforcement:
        """Who enforces `version`: the answer of a change waits for the guards, at most the ack wait."""
        return await self.guards.enforcement(version, self._guard_ack_seconds)

    def follow(self) -> tuple[Published, Subscription[Published]]:
        """The current snapshot and a subscription to the versions after it, live.

        Both are taken in the same step (no await between), so nothing falls
        between the snapshot and the first version the subscription yields.

        A watcher that falls more than the queue size behind is cut off with
        RESOURCE_EXHAUSTED (it reconnects and gets the full snapshot again); it
        never silently skips a version and never slows the other watchers.
        """
        current = self._published
        return current, self._watchers.subscribe()

    def close_watches(self) -> None:
        """Ends every WatchFlags stream (shutdown), so draining does not wait on them."""
        self._watchers.close()

    async def audit(self, query: AuditQuery) -> tuple[list[AuditEntry], bool]:
        return await self._repository.audit(query)

    async def record_audit(self, records) -> int:
        """Other planes' records (already validated); how many were new."""
        return await self._repository.record(records)
