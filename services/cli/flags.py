"""`quantmesh flags ...`: read and steer the control plane's flags by hand.

    quantmesh flags show
    quantmesh flags lock --reason "broker outage"            # HALTED, and every open order canceled
    quantmesh flags lock --keep-open --reason "maintenance"  # HALTED, resting orders keep working
    quantmesh flags unlock --reason "broker back"
    quantmesh flags disable entries|exits [--strategy SLUG] --reason "..."
    quantmesh flags enable entries|exits [--strategy SLUG] [--create] [--reason "..."]
    quantmesh flags audit [--strategy SLUG] [--actor NAME] [--flag NAME] [--limit N]

The address comes from --address (before or after the action), else
QUANTMESH_CONTROL_ADDR (default 127.0.0.1:50052); the bearer token from
QUANTMESH_TOKEN; TLS from QUANTMESH_TLS_CA (and QUANTMESH_TLS_CERT/KEY for mutual
TLS), as the planes dial each other. A refusal prints the server's sentence and
exits 1; a bad setting exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import grpc

from quantmesh.control.v1 import control_pb2 as pb
from quantmesh.control.v1 import control_pb2_grpc
from services.cli.dial import call_plane

DEFAULT_ADDRESS = "127.0.0.1:50052"
_STATES = {pb.TRADING_STATE_ACTIVE: "ACTIVE", pb.TRADING_STATE_REDUCING: "REDUCING",
           pb.TRADING_STATE_HALTED: "HALTED"}


def add_flags_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("flags", help="show and change the control flags (lock, entries, exits)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # --address and --timeout work before or after the action ("flags show --address X" too).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=argparse.SUPPRESS,
                        help=f"control address (default: $QUANTMESH_CONTROL_ADDR or {DEFAULT_ADDRESS})")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds to wait for control (default 10)")
    parser.add_argument("--address", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="flags_action", required=True)
    actions.add_parser("show", help="the current flags and trading state", parents=[common])
    for name, text in (("lock", "HALT: no new orders of any kind, and cancel every open order (cancels pass)"),
                       ("unlock", "lift the global lock")):
        action = actions.add_parser(name, help=text, parents=[common])
        action.add_argument("--reason", required=True, help="why; goes into the audit log")
        action.add_argument("--expect-version", type=int, default=0, help="refuse if the flags changed since")
        if name == "lock":
            action.add_argument("--keep-open", action="store_true",
                                help="leave resting orders working at the venue (default: cancel them all)")
    for name, text in (("enable", "allow entries or exits again"), ("disable", "stop entries or exits")):
        action = actions.add_parser(name, help=text, parents=[common])
        action.add_argument("which", choices=("entries", "exits"))
        action.add_argument("--strategy", metavar="SLUG", help="only this strategy (default: global)")
        action.add_argument("--create", action="store_true", help="create the strategy's flags if unknown")
        action.add_argument("--note", help="a note kept with the strategy's flags")
        action.add_argument("--reason", required=name == "disable", default="", help="why; goes into the audit log")
        action.add_argument("--expect-version", type=int, default=0, help="refuse if the flags changed since")
    audit = actions.add_parser("audit", help="who changed what, when, from where and why (newest first)",
                               parents=[common])
    audit.add_argument("--strategy", metavar="SLUG", default="")
    audit.add_argument("--actor", default="")
    audit.add_argument("--flag", default="")
    audit.add_argument("--limit", type=int, default=20)
    parser.set_defaults(run=run_flags)
    return parser


def run_flags(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    return call_plane("control", getattr(args, "address", None),
                      lambda channel: _flags(control_pb2_grpc.ControlStub(channel), args, out), err)


async def _flags(stub: control_pb2_grpc.ControlStub, args: argparse.Namespace, out: TextIO) -> None:
    call = {"timeout": getattr(args, "timeout", 10.0)}
    action = args.flags_action
    if action == "show":
        print(format_snapshot((await stub.GetFlags(pb.GetFlagsRequest(), **call)).snapshot), file=out)
    elif action in ("lock", "unlock"):
        request = pb.SetGlobalFlagsRequest(global_lock=action == "lock", reason=args.reason,
                                           expected_version=args.expect_version)
        if action == "lock":
            request.cancel_open_orders = not args.keep_open
        reply = await stub.SetGlobalFlags(request, **call)
        print(format_snapshot(reply.snapshot) + "\n" + format_enforcement(reply), file=out)
    elif action in ("enable", "disable"):
        reply = await _set_enabled(stub, args, call)
        print(format_snapshot(reply.snapshot) + "\n" + format_enforcement(reply), file=out)
    elif action == "audit":
        reply = await stub.ListAudit(pb.ListAuditRequest(slug=args.strategy, actor=args.actor, flag=args.flag,
                                                         limit=args.limit), **call)
        print(format_audit(reply.entries), file=out)
    else:  # argparse only lets the actions above through
        raise AssertionError(action)


async def _set_enabled(stub, args, call) -> pb.FlagSnapshot:
    enabled = args.flags_action == "enable"
    if args.strategy:
        fields = {"entry_enabled" if args.which == "entries" else "exit_enabled": enabled}
        if args.note is not None:
            fields["note"] = args.note
        return await stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
            slug=args.strategy, reason=args.reason, expected_version=args.expect_version,
            create_if_missing=args.create, **fields), **call)
    fields = {"global_entry_enabled" if args.which == "entries" else "global_exit_enabled": enabled}
    return await stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(reason=args.reason,
                                                              expected_version=args.expect_version, **fields), **call)


def format_enforcement(reply) -> str:
    """Who enforces the new version: an acknowledged change, or the guards that have not yet."""
    if reply.not_enforced_by:
        return ("WARNING: not yet enforced by " + ", ".join(reply.not_enforced_by)
                + " (they may still pass orders under the previous flags)")
    if reply.enforced_by:
        return "enforced by " + ", ".join(reply.enforced_by)
    return "no order plane is connected to control: the flags apply when one connects"


def _on(value: bool) -> str:
    return "on" if value else "OFF"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in (headers, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _time(stamp) -> str:
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC") if stamp.seconds or stamp.nanos else "-"


def format_snapshot(snapshot: pb.FlagSnapshot) -> str:
    head = (f"trading state: {_STATES.get(snapshot.state, 'UNKNOWN')}   version {snapshot.version}   "
            f"updated {_time(snapshot.updated_time)}\n"
            f"global lock: {'LOCKED' if snapshot.global_lock else 'off'}"
            f"{' (cancels open orders)' if snapshot.lock_cancels_open_orders else ' (resting orders keep working)'}"
            f"   entries: "
            f"{_on(snapshot.global_entry_enabled)}   exits: {_on(snapshot.global_exit_enabled)}")
    if not snapshot.strategies:
        return head + "\n(no strategy flags)"
    rows = [(s.slug, _on(s.entry_enabled), _on(s.exit_enabled), _time(s.updated_time), s.note)
            for s in snapshot.strategies]
    return head + "\n\n" + table(("strategy", "entries", "exits", "updated", "note"), rows)


def format_audit(entries) -> str:
    if not entries:
        return "(no audit entries)"
    rows = [(_time(e.time), e.plane, e.event, f"{e.actor} ({e.role})", e.slug or "-", e.subject or e.flag,
             f"{e.old_value} -> {e.new_value}" if e.old_value or e.new_value else "", e.reason,
             f"{e.mode}@{e.site}" if e.site else e.mode) for e in entries]
    return table(("time", "plane", "event", "actor", "strategy", "subject", "change", "reason", "where"), rows)


def add_audit_parser(subparsers) -> None:
    """`quantmesh audit`: the one audit trail of every plane, newest first, with filters."""
    parser = subparsers.add_parser("audit", help="the audit trail of every plane: flag changes, refusals, "
                                                 "cancels, flattens, reconciliations, takeovers")
    parser.add_argument("--actor", default="")
    parser.add_argument("--strategy", metavar="SLUG", default="")
    parser.add_argument("--event", default="", help="e.g. flag_change, order_refused, order_canceled, flatten")
    parser.add_argument("--plane", default="", help="e.g. control, order, position")
    parser.add_argument("--since", default=None, help="ISO time, e.g. 2026-11-30T09:00:00Z")
    parser.add_argument("--until", default=None, help="ISO time")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--address", default=None,
                        help=f"control address (default: $QUANTMESH_CONTROL_ADDR or {DEFAULT_ADDRESS})")
    parser.set_defaults(run=run_audit)


def run_audit(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from datetime import datetime

    out, err = out or sys.stdout, err or sys.stderr
    request = pb.ListAuditRequest(actor=args.actor, slug=args.strategy, event=args.event, plane=args.plane,
                                  limit=args.limit)
    try:
        for name in ("since", "until"):
            text = getattr(args, name)
            if text:
                getattr(request, name).FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        print(f"error: --since/--until must be ISO times such as 2026-11-30T09:00:00Z ({exc})", file=err)
        return 2

    async def audit(channel) -> None:
        reply = await control_pb2_grpc.ControlStub(channel).ListAudit(request, timeout=10)
        print(format_audit(reply.entries), file=out)

    return call_plane("control", args.address, audit, err)


def main(argv: list[str] | None = None) -> int:
    """`python -m services.cli.flags ...`: the same as `quantmesh flags ...`."""
    parser = argparse.ArgumentParser(prog="quantmesh")
    add_flags_parser(parser.add_subparsers(dest="command", required=True))
    return run_flags(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
