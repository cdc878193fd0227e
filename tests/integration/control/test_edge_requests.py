"""Control over gRPC: the issue-15 requests that reached PostgreSQL and came back UNKNOWN are now
INVALID_ARGUMENT with a sentence naming the field, and nothing about them is stored."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.control.v1 import control_pb2 as pb

NO_YEAR_ONE = -62135596800 - 1


@pytest.mark.parametrize("call, request_, words", [
    ("SetGlobalFlags", pb.SetGlobalFlagsRequest(global_lock=True, reason="drill\x00"),
     "reason has the unprintable character U+0000"),
    ("SetStrategyFlags", pb.SetStrategyFlagsRequest(slug="ok_slug\n", create_if_missing=True, reason="x"),
     "slug 'ok_slug\\n' is not a strategy slug"),
    ("SetStrategyFlags", pb.SetStrategyFlagsRequest(slug="ma_cross", note="a\x00b", create_if_missing=True),
     "note has the unprintable character U+0000"),
    ("SetStrategyFlags", pb.SetStrategyFlagsRequest(slug="ma_cross", reason="\x00", create_if_missing=True),
     "reason has the unprintable character U+0000"),
    ("SetGlobalFlags", pb.SetGlobalFlagsRequest(global_lock=True, reason="x", expected_version=2**64 - 1),
     "expected_version 18446744073709551615 is above"),
    ("ListAudit", pb.ListAuditRequest(since=Timestamp(seconds=253402300800)),
     "since is not a valid timestamp: seconds 253,402,300,800"),
    ("ListAudit", pb.ListAuditRequest(until=Timestamp(seconds=NO_YEAR_ONE)), "until is not a valid timestamp"),
    ("ListAudit", pb.ListAuditRequest(since=Timestamp(seconds=10, nanos=-1)), "since is not a valid timestamp: nanos -1"),
    ("ListAudit", pb.ListAuditRequest(until=Timestamp(seconds=10, nanos=10**9)), "nanos 1,000,000,000"),
    ("ListAudit", pb.ListAuditRequest(since=Timestamp(seconds=253402300799)), "is not before 2100-01-01"),
    ("ListAudit", pb.ListAuditRequest(actor="ops\x00"), "actor has the unprintable character U+0000"),
    ("ListAudit", pb.ListAuditRequest(slug="ok_slug\n"), "slug filter 'ok_slug\\n' is not a strategy slug"),
    ("ListAudit", pb.ListAuditRequest(page_token="before:9999999999999999999"), "page_token 'before:9999999999999999999' is not a token"),
    ("ListAudit", pb.ListAuditRequest(page_token="before:١٢"), "page_token 'before:١٢' is not a token"),
])
async def test_issue_15_control_requests_are_invalid_argument(control, call, request_, words):
    before = (await control.stub.GetFlags(pb.GetFlagsRequest())).snapshot
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(control.stub, call)(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert words in err.value.details()
    after = (await control.stub.GetFlags(pb.GetFlagsRequest())).snapshot
    assert after == before
    assert list((await control.stub.ListAudit(pb.ListAuditRequest())).entries) == []


async def test_printable_unicode_notes_and_reasons_are_kept(control):
    reply = await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
        slug="ma_cross", note="雇用統計の前は停止", reason="NFP ✓", create_if_missing=True, entry_enabled=False))
    assert reply.snapshot.strategies[0].note == "雇用統計の前は停止"
