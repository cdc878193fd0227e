"""Control over gRPC on a real PostgreSQL: changes, audit, validation, auth, concurrency."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from quantmesh.control.v1 import control_pb2 as pb
from services.common.auth import bearer_metadata
from services.common.timeutil import to_timestamp

OPERATOR, STRATEGY = "op-secret", "strat-secret"


async def snapshot(stub) -> pb.FlagSnapshot:
    return (await stub.GetFlags(pb.GetFlagsRequest())).snapshot


async def expect_error(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    return err.value.details()


async def test_fresh_install_trades_at_version_one(control):
    snap = await snapshot(control.stub)
    assert (snap.version, snap.global_entry_enabled, snap.global_exit_enabled, snap.global_lock) == (1, True, True, False)
    assert snap.state == pb.TRADING_STATE_ACTIVE
    assert list(snap.strategies) == []


async def test_lock_sets_halted_and_audits_actor_source_reason_old_new(control):
    reply = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="broker outage"))
    assert reply.snapshot.version == 2 and reply.snapshot.global_lock
    assert reply.snapshot.state == pb.TRADING_STATE_HALTED
    entries = (await control.stub.ListAudit(pb.ListAuditRequest())).entries
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.version, entry.actor, entry.role, entry.reason) == (2, "anonymous", "operator", "broker outage")
    assert (entry.slug, entry.flag, entry.old_value, entry.new_value) == ("", "global_lock", "false", "true")
    assert entry.source.startswith("ipv4:127.0.0.1:")
    assert abs(entry.time.ToDatetime(tzinfo=timezone.utc) - datetime.now(timezone.utc)) < timedelta(minutes=5)


async def test_one_audit_row_per_changed_field_and_reducing_state(control):
    reply = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(
        global_entry_enabled=False, global_exit_enabled=False, global_lock=False, reason="maintenance"))
    # global_lock was already false: two fields changed, so two rows, one version
    assert reply.snapshot.version == 2 and reply.snapshot.state == pb.TRADING_STATE_REDUCING
    entries = (await control.stub.ListAudit(pb.ListAuditRequest())).entries
    assert sorted((e.flag, e.old_value, e.new_value, e.version) for e in entries) == [
        ("global_entry_enabled", "true", "false", 2), ("global_exit_enabled", "true", "false", 2)]


async def test_a_set_that_changes_nothing_keeps_the_version_and_writes_no_audit(control):
    await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="drill"))
    again = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="drill again"))
    assert again.snapshot.version == 2
    empty = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest())
    assert empty.snapshot.version == 2
    assert len((await control.stub.ListAudit(pb.ListAuditRequest())).entries) == 1


async def test_lock_and_unlock_need_a_reason(control):
    for lock in (True, False):
        details = await expect_error(control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=lock, reason="  ")),
                                     grpc.StatusCode.INVALID_ARGUMENT)
        assert "reason is required" in details
    assert (await snapshot(control.stub)).version == 1  # nothing written
    # entries/exits alone do not need a reason
    reply = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_exit_enabled=False))
    assert reply.snapshot.version == 2


async def test_stale_expected_version_is_aborted_with_both_versions(control):
    await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_entry_enabled=False, expected_version=1))
    details = await expect_error(control.stub.SetGlobalFlags(
        pb.SetGlobalFlagsRequest(global_entry_enabled=True, expected_version=1)), grpc.StatusCode.ABORTED)
    assert "expected_version 1" in details and "current version 2" in details
    details = await expect_error(control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
        slug="ma_cross", entry_enabled=False, create_if_missing=True, expected_version=7)), grpc.StatusCode.ABORTED)
    assert "expected_version 7" in details and "current version 2" in details
    ok = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_entry_enabled=True, expected_version=2))
    assert ok.snapshot.version == 3 and ok.snapshot.global_entry_enabled


async def test_unknown_slug_is_not_found_unless_create_if_missing(control):
    details = await expect_error(control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
        slug="ma_cross", entry_enabled=False)), grpc.StatusCode.NOT_FOUND)
    assert "'ma_cross'" in details and "create_if_missing" in details
    reply = await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
        slug="ma_cross", entry_enabled=False, note="paused for review", reason="review", create_if_missing=True))
    [flags] = reply.snapshot.strategies
    assert (flags.slug, flags.entry_enabled, flags.exit_enabled, flags.note) == ("ma_cross", False, True,
                                                                                 "paused for review")
    entries = (await control.stub.ListAudit(pb.ListAuditRequest(slug="ma_cross"))).entries
    assert sorted((e.flag, e.old_value, e.new_value) for e in entries) == [
        ("entry_enabled", "(absent)", "false"), ("exit_enabled", "(absent)", "true"),
        ("note", "(absent)", "paused for review")]
    # now known: a plain change works and is audited
    reply = await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(slug="ma_cross", entry_enabled=True))
    assert reply.snapshot.strategies[0].entry_enabled and reply.snapshot.version == 3


async def test_strategies_are_sorted_by_slug(control):
    for slug in ("zeta", "alpha_1", "mid"):
        await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(slug=slug, create_if_missing=True))
    assert [s.slug for s in (await snapshot(control.stub)).strategies] == ["alpha_1", "mid", "zeta"]


@pytest.mark.parametrize("slug", ["", "MA_CROSS", "ma-cross", "a" * 65, "ma cross", "é"])
async def test_malformed_slug_is_invalid_argument(control, slug):
    details = await expect_error(control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
        slug=slug, entry_enabled=False, create_if_missing=True)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "lowercase letters, digits and underscores" in details


async def test_list_audit_filters_and_pages_newest_first(control_factory):
    control = await control_factory(tokens=f"{OPERATOR}=alice:operator,bob-secret=bob:operator,{STRATEGY}=w:strategy")
    alice, bob = bearer_metadata(OPERATOR), bearer_metadata("bob-secret")
    stub = control.stub
    await stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="a1"), metadata=alice)
    await stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(slug="ma_cross", entry_enabled=False, reason="b1",
                                                           create_if_missing=True), metadata=bob)
    middle = datetime.now(timezone.utc)
    await stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=False, reason="a2"), metadata=alice)
    await stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(slug="breakout", exit_enabled=False, reason="b2",
                                                           create_if_missing=True), metadata=bob)

    everything = (await stub.ListAudit(pb.ListAuditRequest(), metadata=alice)).entries
    assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    assert [e.version for e in everything] == sorted((e.version for e in everything), reverse=True)
    by_alice = (await stub.ListAudit(pb.ListAuditRequest(actor="alice"), metadata=alice)).entries
    assert [(e.reason, e.new_value) for e in by_alice] == [("a2", "false"), ("a1", "true")]
    by_slug = (await stub.ListAudit(pb.ListAuditRequest(slug="ma_cross"), metadata=alice)).entries
    assert {e.slug for e in by_slug} == {"ma_cross"} and {e.actor for e in by_slug} == {"bob"}
    by_flag = (await stub.ListAudit(pb.ListAuditRequest(flag="exit_enabled"), metadata=alice)).entries
    assert [(e.slug, e.new_value) for e in by_flag] == [("breakout", "false"), ("ma_cross", "true")]
    since = (await stub.ListAudit(pb.ListAuditRequest(since=to_timestamp(middle)), metadata=alice)).entries
    assert {e.reason for e in since} == {"a2", "b2"}
    until = (await stub.ListAudit(pb.ListAuditRequest(until=to_timestamp(middle)), metadata=alice)).entries
    assert {e.reason for e in until} == {"a1", "b1"}

    pages, token = [], ""
    while True:
        reply = await stub.ListAudit(pb.ListAuditRequest(limit=2, page_token=token), metadata=alice)
        pages.append([e.id for e in reply.entries])
        token = reply.next_page_token
        if not token:
            break
    assert [i for page in pages for i in page] == [e.id for e in everything]
    assert all(len(page) <= 2 for page in pages) and len(pages) == (len(everything) + 1) // 2


@pytest.mark.parametrize("request_, words", [
    (pb.ListAuditRequest(flag="lock"), "global_lock"),
    (pb.ListAuditRequest(slug="Bad-Slug"), "slug filter"),
    (pb.ListAuditRequest(limit=1001), "maximum 1000"),
    (pb.ListAuditRequest(page_token="garbage"), "next_page_token"),
    (pb.ListAuditRequest(since=to_timestamp(datetime(2030, 1, 1, tzinfo=timezone.utc)),
                         until=to_timestamp(datetime(2020, 1, 1, tzinfo=timezone.utc))), "is not before until"),
])
async def test_bad_audit_queries_are_invalid_argument(control, request_, words):
    details = await expect_error(control.stub.ListAudit(request_), grpc.StatusCode.INVALID_ARGUMENT)
    assert words in details


async def test_non_operator_is_permission_denied_and_changes_nothing(control_factory):
    control = await control_factory(tokens=f"{OPERATOR}=alice:operator,{STRATEGY}=ma_cross:strategy")
    strategy = bearer_metadata(STRATEGY)
    details = await expect_error(control.stub.SetGlobalFlags(
        pb.SetGlobalFlagsRequest(global_lock=True, reason="x"), metadata=strategy), grpc.StatusCode.PERMISSION_DENIED)
    assert "operator role" in details
    await expect_error(control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
        slug="ma_cross", entry_enabled=True, create_if_missing=True), metadata=strategy),
        grpc.StatusCode.PERMISSION_DENIED)
    await expect_error(control.stub.GetFlags(pb.GetFlagsRequest()), grpc.StatusCode.UNAUTHENTICATED)
    # reading is open to any valid token
    snap = (await control.stub.GetFlags(pb.GetFlagsRequest(), metadata=strategy)).snapshot
    assert snap.version == 1 and not snap.global_lock
    reply = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="drill"),
                                              metadata=bearer_metadata(OPERATOR))
    assert reply.snapshot.global_lock
    [entry] = (await control.stub.ListAudit(pb.ListAuditRequest(), metadata=strategy)).entries
    assert (entry.actor, entry.role) == ("alice", "operator")


async def test_concurrent_writers_get_consecutive_versions_and_matching_audit(control):
    import asyncio

    async def toggle(i: int):
        return await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
            slug=f"s{i}", entry_enabled=False, create_if_missing=True, reason=f"r{i}"))

    replies = await asyncio.gather(*(toggle(i) for i in range(20)))
    assert sorted(r.snapshot.version for r in replies) == list(range(2, 22))
    entries = (await control.stub.ListAudit(pb.ListAuditRequest(flag="entry_enabled", limit=1000))).entries
    assert sorted(e.version for e in entries) == list(range(2, 22))
    assert (await snapshot(control.stub)).version == 21
