"""The Control servicer: protobuf <-> domain, no business rules."""

from __future__ import annotations

import asyncio
import contextlib

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common import validation
from services.common.audit import MODES
from services.common.auth import Role, current_identity
from services.common.clock import Clock
from services.common.errors import InvalidArgument
from services.common.server import ServiceBinding, binding
from services.common.timeutil import to_timestamp
from services.control.engine import Caller, ControlEngine, Published
from services.control.state import (MAX_NOTE_CHARS, MAX_REASON_CHARS, AuditEntry, FlagState, GlobalChange,
                                    StrategyChange, TradingState, audit_query, next_page_token)

_SERVICE = "/quantmesh.control.v1.Control/"

#: Changing flags needs the operator role (when tokens are configured); reading does not.
CONTROL_POLICY = {
    _SERVICE + "SetGlobalFlags": frozenset({Role.OPERATOR}),
    _SERVICE + "SetStrategyFlags": frozenset({Role.OPERATOR}),
    # Only a plane may say it enforces the flags (a strategy's token must not vouch for the guard).
    _SERVICE + "AckFlags": frozenset({Role.SERVICE, Role.OPERATOR}),
    # The audit trail is written by the planes, never by a strategy.
    _SERVICE + "RecordAudit": frozenset({Role.SERVICE, Role.OPERATOR}),
}

MAX_HEARTBEAT_SECONDS = 3600
#: Actors are the names in QUANTMESH_TOKENS; a filter longer than any of them matches nothing anyway.
MAX_ACTOR_CHARS = 200
MAX_GUARD_CHARS = 200

_STATES = {
    TradingState.ACTIVE: control_pb2.TRADING_STATE_ACTIVE,
    TradingState.REDUCING: control_pb2.TRADING_STATE_REDUCING,
    TradingState.HALTED: control_pb2.TRADING_STATE_HALTED,
}


def snapshot_to_proto(state: FlagState) -> control_pb2.FlagSnapshot:
    return control_pb2.FlagSnapshot(
        version=state.version,
        global_entry_enabled=state.global_entry_enabled,
        global_exit_enabled=state.global_exit_enabled,
        global_lock=state.global_lock,
        state=_STATES[state.trading_state],
        strategies=[control_pb2.StrategyFlags(slug=s.slug, entry_enabled=s.entry_enabled, exit_enabled=s.exit_enabled,
                                              note=s.note, updated_time=to_timestamp(s.updated_time))
                    for s in state.strategies],
        updated_time=to_timestamp(state.updated_time),
        lock_cancels_open_orders=state.lock_cancels_open_orders,
    )


def _audit_to_proto(entry: AuditEntry) -> control_pb2.AuditEntry:
    return control_pb2.AuditEntry(
        id=entry.id, version=entry.version, actor=entry.actor, role=entry.role, source=entry.source,
        reason=entry.reason, slug=entry.slug, flag=entry.flag, old_value=entry.old_value,
        new_value=entry.new_value, time=to_timestamp(entry.time), event=entry.event, plane=entry.plane,
        mode=entry.mode, site=entry.site, session=entry.session, subject=entry.subject)


MAX_AUDIT_RECORDS = 1000
_AUDIT_TEXT = {"reason": MAX_REASON_CHARS, "old_value": MAX_NOTE_CHARS, "new_value": MAX_NOTE_CHARS,
               "source": 200, "actor": MAX_ACTOR_CHARS, "role": 32, "site": 255, "session": 64, "subject": 200}


def _audit_record(i: int, record: control_pb2.AuditRecord) -> dict:
    """A record of another plane, checked field by field before it reaches the database."""
    name = f"records[{i}]"
    if not validation.NAME.fullmatch(record.record_id):
        raise InvalidArgument(f"{name}.record_id {validation.shown(record.record_id)} is not an id "
                              "(1 to 64 characters of A-Z a-z 0-9 . _ : -)")
    for field in ("event", "plane"):
        validation.slug(f"{name}.{field}", getattr(record, field))
    if record.mode not in MODES:
        raise InvalidArgument(f"{name}.mode {validation.shown(record.mode)} is not one of {', '.join(MODES)}")
    if record.strategy_slug:
        validation.slug(f"{name}.strategy_slug", record.strategy_slug)
    if not record.HasField("time"):
        raise InvalidArgument(f"{name}.time is unset; say when it happened")
    body = {f: validation.text(f"{name}.{f}", getattr(record, f), max_chars=limit) for f, limit in _AUDIT_TEXT.items()}
    return {**body, "record_id": record.record_id, "event": record.event, "plane": record.plane,
            "mode": record.mode, "strategy_slug": record.strategy_slug,
            "time": validation.timestamp(f"{name}.time", record.time)}


def _optional(request, name: str):
    return getattr(request, name) if request.HasField(name) else None


def _reason(request) -> str:
    return validation.text("reason", request.reason, max_chars=MAX_REASON_CHARS).strip()


def _expected_version(request) -> int:
    return validation.sequence("expected_version", request.expected_version)


def _caller(context) -> Caller:
    who = current_identity()
    return Caller(actor=who.actor, role=who.role.value, source=context.peer() or who.peer or "")


class ControlServicer(control_pb2_grpc.ControlServicer):
    def __init__(self, engine: ControlEngine, *, clock: Clock, heartbeat_seconds: float) -> None:
        self._engine = engine
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        # Many watchers receive the same version; build its message once.
        self._proto_cache: tuple[int, control_pb2.FlagSnapshot] | None = None

    def _snapshot(self, state: FlagState) -> control_pb2.FlagSnapshot:
        cached = self._proto_cache
        if cached is not None and cached[0] == state.version:
            return cached[1]
        message = snapshot_to_proto(state)
        if cached is None or state.version >= cached[0]:
            self._proto_cache = (state.version, message)
        return message

    async def GetFlags(self, request, context):
        return control_pb2.GetFlagsResponse(snapshot=self._snapshot(self._engine.current.state))

    async def SetGlobalFlags(self, request, context):
        change = GlobalChange(
            global_entry_enabled=_optional(request, "global_entry_enabled"),
            global_exit_enabled=_optional(request, "global_exit_enabled"),
            global_lock=_optional(request, "global_lock"),
            lock_cancels_open_orders=_optional(request, "cancel_open_orders"),
            reason=_reason(request), expected_version=_expected_version(request))
        state = await self._engine.set_global(change, _caller(context))
        enforced = await self._engine.enforcement(state.version)
        return control_pb2.SetGlobalFlagsResponse(snapshot=self._snapshot(state), enforced_by=enforced.enforced_by,
                                                  not_enforced_by=enforced.not_enforced_by)

    async def SetStrategyFlags(self, request, context):
        note = _optional(request, "note")
        change = StrategyChange(
            slug=validation.slug("slug", request.slug), entry_enabled=_optional(request, "entry_enabled"),
            exit_enabled=_optional(request, "exit_enabled"),
            note=None if note is None else validation.text("note", note, max_chars=MAX_NOTE_CHARS),
            reason=_reason(request), expected_version=_expected_version(request),
            create_if_missing=request.create_if_missing)
        state = await self._engine.set_strategy(change, _caller(context))
        enforced = await self._engine.enforcement(state.version)
        return control_pb2.SetStrategyFlagsResponse(snapshot=self._snapshot(state), enforced_by=enforced.enforced_by,
                                                    not_enforced_by=enforced.not_enforced_by)

    async def RecordAudit(self, request, context):
        count = len(request.records)
        if not 1 <= count <= MAX_AUDIT_RECORDS:
            raise InvalidArgument(f"records holds {count:,}; send 1 to {MAX_AUDIT_RECORDS:,} per call")
        records = [_audit_record(i, r) for i, r in enumerate(request.records)]
        recorded = await self._engine.record_audit(records)
        return control_pb2.RecordAuditResponse(recorded=recorded, duplicates=count - recorded)

    async def AckFlags(self, request, context):
        guard = validation.text("guard", request.guard, max_chars=MAX_GUARD_CHARS).strip()
        if not guard:
            raise InvalidArgument("guard is empty; send the name given in WatchFlagsRequest.guard")
        version = validation.sequence("version", request.version)
        if version > self._engine.current.state.version:
            raise InvalidArgument(f"version {version} is ahead of the current flags version "
                                  f"{self._engine.current.state.version}; acknowledge a version you received")
        self._engine.guards.acknowledge(guard, version)
        return control_pb2.AckFlagsResponse()

    async def ListAudit(self, request, context):
        query = audit_query(actor=validation.text("actor", request.actor, max_chars=MAX_ACTOR_CHARS),
                            slug=request.slug, flag=request.flag,
                            since=validation.optional_timestamp(request, "since"),
                            until=validation.optional_timestamp(request, "until"),
                            limit=request.limit, page_token=request.page_token,
                            event=request.event, plane=request.plane)
        entries, has_more = await self._engine.audit(query)
        return control_pb2.ListAuditResponse(entries=[_audit_to_proto(e) for e in entries],
                                             next_page_token=next_page_token(entries, has_more))

    async def WatchFlags(self, request, context):
        if request.heartbeat_seconds > MAX_HEARTBEAT_SECONDS:
            raise InvalidArgument(f"heartbeat_seconds {request.heartbeat_seconds} is above the maximum "
                                  f"{MAX_HEARTBEAT_SECONDS}; send 0 for the server default "
                                  f"({self._heartbeat_seconds:g} s)")
        heartbeat = float(request.heartbeat_seconds) or self._heartbeat_seconds
        guard = validation.text("guard", request.guard, max_chars=MAX_GUARD_CHARS).strip()
        current, subscription = self._engine.follow()
        with contextlib.ExitStack() as connected:
            if guard:
                connected.enter_context(self._engine.guards.connected(guard))
            async for message in self._watch(current, subscription, heartbeat):
                yield message

    async def _watch(self, current, subscription, heartbeat: float):
        try:
            seq, last = 1, current
            yield self._message(seq, last, heartbeat=False)
            while True:
                seq += 1
                try:
                    # Reading is cancel-safe: a timeout only means "send a heartbeat".
                    _, last = await asyncio.wait_for(subscription.next(), heartbeat)
                except asyncio.TimeoutError:
                    yield self._message(seq, last, heartbeat=True)
                    continue
                except StopAsyncIteration:
                    return  # the server is shutting down; the watcher reconnects
                yield self._message(seq, last, heartbeat=False)
        finally:
            subscription.close()

    def _message(self, seq: int, published: Published, *, heartbeat: bool) -> control_pb2.WatchFlagsResponse:
        return control_pb2.WatchFlagsResponse(
            seq=seq, snapshot=self._snapshot(published.state), heartbeat=heartbeat,
            sent_time=to_timestamp(self._clock.now()), trace_context=published.trace_context)


def control_binding(servicer: ControlServicer) -> ServiceBinding:
    return binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server, servicer)
