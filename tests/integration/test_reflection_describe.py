"""`grpcurl describe` (the real grpcurl 1.8.6) finds every kind of symbol through the planes'
reflection, methods included, each with the contract's comment."""

from __future__ import annotations

import asyncio

import pytest

from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.auth import TokenTable
from services.common.server import GrpcHost, binding
from tests.support.grpcurl import grpcurl


async def describe(host: GrpcHost, symbol: str):
    # In a thread: the server runs on this test's event loop, which must keep turning.
    return await asyncio.to_thread(grpcurl, "-plaintext", host.address, "describe", symbol)


@pytest.fixture(scope="module")
async def order_host():
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(""), policy={}, bindings=[
        binding(order_pb2, "Order", order_pb2_grpc.add_OrderServicer_to_server, order_pb2_grpc.OrderServicer())])
    await host.start()
    yield host
    await host.stop()


@pytest.mark.parametrize("symbol, answer", [
    ("quantmesh.order.v1.Order.Submit", "rpc Submit ( .quantmesh.order.v1.SubmitRequest ) returns "
                                        "( .quantmesh.order.v1.SubmitResponse )"),
    ("quantmesh.order.v1.Order.WatchFills", "returns ( stream .quantmesh.order.v1.WatchFillsResponse )"),
    ("quantmesh.order.v1.Order", "service Order {"),
    ("quantmesh.order.v1.OrderIntent", "message OrderIntent {"),
    ("quantmesh.order.v1.OrderState", "enum OrderState {"),
    ("grpc.health.v1.Health.Check", "rpc Check ( .grpc.health.v1.HealthCheckRequest )"),
])
async def test_describe_finds_the_symbol(order_host, symbol, answer):
    described = await describe(order_host, symbol)
    assert described.returncode == 0, described.stderr
    assert f"{symbol} is a" in described.stdout and answer in described.stdout


async def test_a_method_is_described_with_its_comment(order_host):
    described = await describe(order_host, "quantmesh.order.v1.Order.Submit")
    comment = described.stdout.split("rpc Submit")[0]
    assert "//" in comment and len(comment.strip()) > 60, described.stdout


async def test_an_unknown_method_is_still_not_found(order_host):
    described = await describe(order_host, "quantmesh.order.v1.Order.Teleport")
    assert described.returncode != 0 and "Symbol not found" in described.stderr
