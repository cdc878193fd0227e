"""The console's only way to the planes: their gRPC contracts, called with the console's own token.

Every call has a deadline, and a refusal comes back as `PlaneRefused` with the HTTP status the
console answers and the plane's own sentence, so the page shows what the plane said
(e.g. "reason is required to lock or unlock") rather than a stack trace.

The operator's identity travels in what the contracts carry: the control plane records the
console's token's actor, and the reason starts with "<operator>@console: ", so the audit trail
says who pressed the switch.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common.channels import open_channel
from services.common.config import PeerConfig
from services.common.timeutil import to_timestamp
from services.console.operators import Operator
from services.console.requests import AuditQuery, FillQuery, Freeze, GlobalSwitch, OrderQuery, StrategySwitch

PLANES = ("market_data", "control", "order", "position")
#: A plane the console shows when it is configured (QUANTMESH_ANALYSIS_ADDR).
OPTIONAL_PLANES = ("analysis",)
_ATTRIBUTION = re.compile(r"([a-z0-9_.-]{1,64})@console: ", re.ASCII)

_HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class PlaneRefused(Exception):
    """A plane said no, or did not answer; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


def attributed(operator: Operator, reason: str) -> str:
    """The reason as the control plane records it: who, through the console, and why."""
    return f"{operator.name}@console: {reason}"


def operator_of(reason: str) -> str | None:
    """The console operator a recorded reason names, or None for a change made elsewhere."""
    match = _ATTRIBUTION.match(reason)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class PlaneHealth:
    plane: str
    address: str
    serving: bool
    status: str  # SERVING, NOT_SERVING, or DOWN (<code>)


class Planes:
    def __init__(self, peers: PeerConfig, *, timeout_seconds: float = 5.0) -> None:
        self.addresses = {"market_data": peers.market_data, "control": peers.control, "order": peers.order,
                          "position": peers.position}
        if peers.analysis:
            self.addresses["analysis"] = peers.analysis
        self._timeout = timeout_seconds
        self._channels = {plane: open_channel(address, token=peers.token) for plane, address in self.addresses.items()}
        self.control = control_pb2_grpc.ControlStub(self._channels["control"])
        self.order = order_pb2_grpc.OrderStub(self._channels["order"])
        self.position = position_pb2_grpc.PositionStub(self._channels["position"])
        self.analysis = analysis_pb2_grpc.AnalysisStub(self._channels["analysis"]) if peers.analysis else None
        self._health = {plane: health_pb2_grpc.HealthStub(channel) for plane, channel in self._channels.items()}

    @property
    def shown(self) -> tuple[str, ...]:
        """The planes whose health the console shows: the four, and analysis where it is configured."""
        return PLANES + tuple(p for p in OPTIONAL_PLANES if p in self.addresses)

    def channel(self, plane: str) -> grpc.aio.Channel:
        return self._channels[plane]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def _call(self, plane: str, rpc, request):
        try:
            return await rpc(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise refused(plane, self.addresses[plane], exc) from None

    # ---- health ---------------------------------------------------------------------------

    async def health(self) -> list[PlaneHealth]:
        return list(await asyncio.gather(*(self._plane_health(plane) for plane in self.shown)))

    async def _plane_health(self, plane: str) -> PlaneHealth:
        address = self.addresses[plane]
        try:
            reply = await self._health[plane].Check(health_pb2.HealthCheckRequest(), timeout=min(self._timeout, 2.0))
        except grpc.aio.AioRpcError as exc:
            return PlaneHealth(plane, address, False, f"DOWN ({exc.code().name})")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return PlaneHealth(plane, address, status == "SERVING", status)

    # ---- control ----------------------------------------------------------------------------

    async def flags(self) -> control_pb2.FlagSnapshot:
        return (await self._call("control", self.control.GetFlags, control_pb2.GetFlagsRequest())).snapshot

    async def switch_global(self, switch: GlobalSwitch, operator: Operator) -> control_pb2.FlagSnapshot:
        request = control_pb2.SetGlobalFlagsRequest(reason=attributed(operator, switch.reason),
                                                    expected_version=switch.expected_version)
        for name in ("global_entry_enabled", "global_exit_enabled", "global_lock"):
            value = getattr(switch, name)
            if value is not None:
                setattr(request, name, value)
        return (await self._call("control", self.control.SetGlobalFlags, request)).snapshot

    async def switch_strategy(self, switch: StrategySwitch, operator: Operator) -> control_pb2.FlagSnapshot:
        request = control_pb2.SetStrategyFlagsRequest(slug=switch.slug, reason=attributed(operator, switch.reason),
                                                      expected_version=switch.expected_version,
                                                      create_if_missing=switch.create)
        for name in ("entry_enabled", "exit_enabled"):
            value = getattr(switch, name)
            if value is not None:
                setattr(request, name, value)
        return (await self._call("control", self.control.SetStrategyFlags, request)).snapshot

    async def audit(self, query: AuditQuery, *, page_token: str = "", actor: str = "",
                    limit: int | None = None) -> control_pb2.ListAuditResponse:
        request = control_pb2.ListAuditRequest(actor=actor, slug=query.strategy, flag=query.flag,
                                               limit=limit or query.limit, page_token=page_token)
        _set_time(request, "since", query.since)
        _set_time(request, "until", query.until)
        return await self._call("control", self.control.ListAudit, request)

    async def reconciliation_entries(self, *, limit: int = 100) -> list[control_pb2.AuditEntry]:
        """The latest reconciliation decisions of the position plane (held or adopted), newest first."""
        reply = await self._call("control", self.control.ListAudit,
                                 control_pb2.ListAuditRequest(event="reconciliation", limit=limit))
        return list(reply.entries)

    # ---- order ------------------------------------------------------------------------------

    async def orders(self, query: OrderQuery) -> order_pb2.ListOrdersResponse:
        return await self._call("order", self.order.ListOrders, order_pb2.ListOrdersRequest(
            strategy_slug=query.strategy, instrument=query.instrument, states=list(query.states), limit=query.limit,
            page_token=query.page_token))

    async def order_action(self, method: str, request):
        """An operator's action on the order plane (CancelOpen, Flatten), by its RPC name."""
        return await self._call("order", getattr(self.order, method), request)

    async def order_with_fills(self, order_id: str) -> order_pb2.GetOrderResponse:
        return await self._call("order", self.order.GetOrder, order_pb2.GetOrderRequest(order_id=order_id))

    async def recent_fills(self, query: FillQuery, up_to_seq: int) -> list[order_pb2.WatchFillsResponse]:
        """The newest fills up to `up_to_seq` (the ledger's last applied fill), newest first.

        There is no ListFills: the fill stream is replayed from a little before `up_to_seq`, and
        strategy and instrument are filtered here, so the window is the last `query.window`
        fills of all strategies."""
        if up_to_seq <= 0:
            return []
        request = order_pb2.WatchFillsRequest(resume_after_seq=max(0, up_to_seq - query.window))
        call = self.order.WatchFills(request, timeout=self._timeout)
        found = []
        try:
            async for event in call:
                if _fill_matches(event.fill, query):
                    found.append(event)
                if event.seq >= up_to_seq:
                    break
        except grpc.aio.AioRpcError as exc:
            raise refused("order", self.addresses["order"], exc) from None
        finally:
            call.cancel()
        return found[::-1][:query.limit]

    # ---- analysis ---------------------------------------------------------------------------

    async def analysis_board(self) -> tuple[analysis_pb2.GetPerformanceResponse, analysis_pb2.GetAllocationsResponse,
                                            analysis_pb2.GetStrategySettingsResponse]:
        """Performance, allocations and settings of every strategy, asked together (call only when configured)."""
        assert self.analysis is not None
        return await asyncio.gather(
            self._call("analysis", self.analysis.GetPerformance, analysis_pb2.GetPerformanceRequest()),
            self._call("analysis", self.analysis.GetAllocations, analysis_pb2.GetAllocationsRequest()),
            self._call("analysis", self.analysis.GetStrategySettings, analysis_pb2.GetStrategySettingsRequest()))

    async def freeze(self, freeze: Freeze, operator: Operator) -> analysis_pb2.StrategySettings:
        """Freezes (or thaws) a strategy's settings at the analysis plane (call only when configured)."""
        assert self.analysis is not None
        reply = await self._call("analysis", self.analysis.FreezeStrategy, analysis_pb2.FreezeStrategyRequest(
            strategy_slug=freeze.strategy, frozen=freeze.frozen, reason=attributed(operator, freeze.reason)))
        return reply.settings

    # ---- position ---------------------------------------------------------------------------

    async def snapshot(self) -> position_pb2.SnapshotResponse:
        return await self._call("position", self.position.Snapshot, position_pb2.SnapshotRequest())

    async def equity_curve(self, *, since: datetime | None, until: datetime | None,
                           limit: int) -> position_pb2.GetEquityCurveResponse:
        request = position_pb2.GetEquityCurveRequest(limit=limit)
        _set_time(request, "since", since)
        _set_time(request, "until", until)
        return await self._call("position", self.position.GetEquityCurve, request)


def refused(plane: str, address: str, exc: grpc.aio.AioRpcError) -> PlaneRefused:
    code = exc.code()
    details = exc.details() or code.name
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return PlaneRefused(502, f"{plane} at {address} refused the console's own token (QUANTMESH_TOKEN): {details}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return PlaneRefused(_HTTP_STATUS[code], f"{plane} at {address} is not answering ({code.name}): {details}")
    return PlaneRefused(_HTTP_STATUS.get(code, 502), f"{plane} said {code.name}: {details}")


def _set_time(request, field: str, moment: datetime | None) -> None:
    if moment is not None:
        getattr(request, field).CopyFrom(to_timestamp(moment))


def _fill_matches(fill: order_pb2.Fill, query: FillQuery) -> bool:
    return (not query.strategy or fill.strategy_slug == query.strategy) and \
        (not query.instrument or fill.instrument == query.instrument)
