"""Strategy.GetStatus: what this worker is doing, for operators and `quantmesh status`."""

from __future__ import annotations

from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.common.timeutil import to_timestamp
from services.common.wire import ROLE_TO_PROTO
from services.strategies.sdk import INTERFACE_VERSION
from services.strategies.status import WorkerStatus


class StrategyStatusServicer(strategy_pb2_grpc.StrategyServicer):
    def __init__(self, status: WorkerStatus, harness) -> None:
        self._status = status
        self._harness = harness

    async def GetStatus(self, request, context):
        s = self._status
        reply = strategy_pb2.GetStatusResponse(
            slug=s.slug, role=ROLE_TO_PROTO[s.role], interface_version=INTERFACE_VERSION,
            state=strategy_pb2.WorkerState.Value(f"WORKER_STATE_{s.state}"),
            last_candle_seq=s.last_candle_seq, last_factor_seq=s.last_factor_seq, events=s.events,
            intents_submitted=s.intents_submitted, intents_rejected=s.intents_rejected,
            strategy_errors=self._harness.errors, last_error=self._harness.last_error,
            skipped_by_flags=s.skipped_by_flags, params=s.params, started_time=to_timestamp(s.started))
        if s.settings is not None:
            reply.params_version = s.settings.params_version
            reply.allocation_version = s.settings.allocation_version
            reply.allocation = s.settings.allocation.describe()
        reply.settings_problem = s.settings_problem
        if s.last_decision is not None:
            d = s.last_decision
            reply.last_decision.CopyFrom(strategy_pb2.Decision(
                time=to_timestamp(d.time), action=d.action, reason=d.reason,
                client_order_id=d.client_order_id, instrument=d.instrument))
        return reply
