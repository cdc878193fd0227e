"""`quantmesh flags ...` against a real in-process control server (the CLI is synchronous: run in a thread)."""

from __future__ import annotations

import argparse
import asyncio
import io

from quantmesh.control.v1 import control_pb2 as pb
from services.cli.flags import add_flags_parser, run_flags
from tests.support.ports import free_port


async def cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="quantmesh")
    add_flags_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["flags", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(run_flags, args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def test_show_lock_disable_enable_audit(control):
    address = ("--address", control.address)
    code, out, _ = await cli(*address, "show")
    assert code == 0 and "trading state: ACTIVE" in out and "version 1" in out

    code, out, _ = await cli(*address, "lock", "--reason", "cli drill")
    assert code == 0 and "trading state: HALTED" in out and "LOCKED" in out

    code, out, _ = await cli(*address, "disable", "entries", "--strategy", "ma_cross", "--create",
                             "--note", "review", "--reason", "drawdown")
    assert code == 0 and "ma_cross" in out and "review" in out
    snapshot = (await control.stub.GetFlags(pb.GetFlagsRequest())).snapshot
    assert not snapshot.strategies[0].entry_enabled and snapshot.strategies[0].exit_enabled

    code, out, _ = await cli(*address, "disable", "exits", "--reason", "maintenance")
    assert code == 0 and "exits: OFF" in out
    code, out, _ = await cli(*address, "enable", "exits")
    assert code == 0 and "exits: on" in out
    code, out, _ = await cli(*address, "unlock", "--reason", "drill over")
    assert code == 0 and "trading state: ACTIVE" in out

    code, out, _ = await cli(*address, "audit", "--strategy", "ma_cross", "--limit", "10")
    assert code == 0 and "drawdown" in out and "(absent) -> false" in out and "cli drill" not in out
    code, out, _ = await cli(*address, "audit", "--limit", "2")
    assert code == 0 and len(out.strip().splitlines()) == 4  # header, rule, two rows
    assert "drill over" in out.splitlines()[2]  # newest first


async def test_refusals_print_the_server_sentence_and_exit_non_zero(control):
    address = ("--address", control.address)
    code, _, err = await cli(*address, "lock", "--reason", "")
    assert code == 1 and "INVALID_ARGUMENT" in err and "reason is required" in err
    code, _, err = await cli(*address, "enable", "entries", "--strategy", "nobody")
    assert code == 1 and "NOT_FOUND" in err and "create_if_missing" in err
    code, _, err = await cli(*address, "enable", "entries", "--expect-version", "99")
    assert code == 1 and "ABORTED" in err and "current version 1" in err
    code, _, err = await cli("--address", f"127.0.0.1:{free_port()}", "--timeout", "1", "show")
    assert code == 1 and "did not answer" in err
