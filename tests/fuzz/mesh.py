"""The mesh the fuzzers hit: every plane as its own process on loopback, on a real PostgreSQL.

Processes rather than in-process servers: the planes are started exactly as `quantmesh up`
starts them (tests/support/mesh.py), the client's work and the planes' work run on separate
cores, and "the plane stays up" means a process that is still serving. Market data takes ticks
over PublishTicks (QUANTMESH_FEED=push), so the fuzzer's own ticks are what every plane sees;
the order plane's paper venue fills against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.market_data.v1 import market_data_pb2 as md
from quantmesh.market_data.v1 import market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from tests.fuzz.rpcs import KNOWN_ORDER, PLAUSIBLE, SERVICES, serving
from tests.support.mesh import Mesh, StrategyPair

WORKER = StrategyPair(slug="ma_cross")


@dataclass
class FuzzMesh:
    mesh: Mesh
    channels: dict[str, grpc.Channel]

    def internal_errors(self) -> list[str]:
        """Log lines of internal errors (the traceback behind an INTERNAL answer), from every process."""
        found = []
        for name, process in self.mesh.processes.items():
            for line in process.log_path.read_text(errors="replace").splitlines():
                if "internal error " in line:
                    found.append(f"{name}: {line[:2000]}")
        return found

    def all_serving(self) -> dict[str, bool]:
        return {plane: serving(self.channels[plane]) for plane, _, _ in SERVICES}

    def stop(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.mesh.stop()


def start_fuzz_mesh(database_url: str, log_dir: Path) -> FuzzMesh:
    # The seed must be order 1 of the fresh database: sizes from the order plane's own book, so the
    # seed never races the position plane's first exposure view (risk.exposure_stale would record
    # a refused order 1; that wait is the order plane's own start-up, tested in tests/integration/order).
    mesh = Mesh(database_url=database_url, log_dir=log_dir, feed="push", speed="max", strategies=[WORKER],
                plane_env={"order": {"QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "100000",
                                     "QUANTMESH_POSITIONS_SOURCE": "own_book"}}).start()
    addresses = {plane: mesh.address(plane) for plane, _, _ in SERVICES if plane != "strategy"}
    addresses["strategy"] = mesh.worker_address(WORKER.slug, "entry")
    channels = {plane: grpc.insecure_channel(address) for plane, address in addresses.items()}
    fuzz = FuzzMesh(mesh, channels)
    try:
        seed(fuzz)
    except BaseException:
        fuzz.stop()
        raise
    return fuzz


def seed(fuzz: FuzzMesh) -> None:
    """What the reads need to find afterwards: a quote, strategy flags, and order ord-000000000001."""
    market = market_data_pb2_grpc.MarketDataStub(fuzz.channels["market_data"])
    market.PublishTicks(PLAUSIBLE[md.PublishTicksRequest.DESCRIPTOR.full_name][0], timeout=30)
    control_pb2_grpc.ControlStub(fuzz.channels["control"]).SetStrategyFlags(
        PLAUSIBLE[control_pb2.SetStrategyFlagsRequest.DESCRIPTOR.full_name][0], timeout=30)
    resting = order_pb2.SubmitRequest(intent=order_pb2.OrderIntent(
        client_order_id="fz-known", strategy_slug="fuzz_probe", role=1, instrument="USD_JPY", side=1,
        quantity="1000", order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1.000",
        time_in_force=order_pb2.TIME_IN_FORCE_GTC))
    order = order_pb2_grpc.OrderStub(fuzz.channels["order"]).Submit(resting, timeout=30).order
    assert order.order_id == KNOWN_ORDER, f"the seeded order is {order.order_id}, not {KNOWN_ORDER}"


def reads_still_work(fuzz: FuzzMesh) -> None:
    """The reads a trader depends on answer after the fuzzing, each with what was seeded."""
    order = order_pb2_grpc.OrderStub(fuzz.channels["order"])
    assert order.GetOrder(order_pb2.GetOrderRequest(order_id=KNOWN_ORDER), timeout=30).order.order_id == KNOWN_ORDER
    assert order.GetOrder(order_pb2.GetOrderRequest(client_order_id="fz-known"), timeout=30).order.order_id
    listed = order.ListOrders(order_pb2.ListOrdersRequest(limit=1000), timeout=30).orders
    assert KNOWN_ORDER in {o.order_id for o in listed} or len(listed) == 1000
    order.ListOrders(order_pb2.ListOrdersRequest(strategy_slug="fuzz_probe", states=[3, 6]), timeout=30)
    flags = control_pb2_grpc.ControlStub(fuzz.channels["control"]).GetFlags(control_pb2.GetFlagsRequest(), timeout=30)
    assert "fuzz_probe" in {s.slug for s in flags.snapshot.strategies}
    control_pb2_grpc.ControlStub(fuzz.channels["control"]).ListAudit(control_pb2.ListAuditRequest(), timeout=30)
    market = market_data_pb2_grpc.MarketDataStub(fuzz.channels["market_data"])
    market.GetCandles(md.GetCandlesRequest(instrument="USD_JPY", timeframe=1, latest=True), timeout=30)
    assert market.GetQuote(md.GetQuoteRequest(instrument="USD_JPY"), timeout=30).tick.instrument == "USD_JPY"
    position = position_pb2_grpc.PositionStub(fuzz.channels["position"])
    assert position.Snapshot(position_pb2.SnapshotRequest(), timeout=30).account.account == "paper"
    position.GetEquityCurve(position_pb2.GetEquityCurveRequest(), timeout=30)
    status = strategy_pb2_grpc.StrategyStub(fuzz.channels["strategy"]).GetStatus(strategy_pb2.GetStatusRequest(),
                                                                                 timeout=30)
    assert status.slug == WORKER.slug
