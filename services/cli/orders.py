"""`quantmesh flatten` and `quantmesh cancel-open`: the operator's half of the kill switch.

    quantmesh cancel-open --reason "venue incident"                  # every open order
    quantmesh cancel-open --strategy ma_cross --reason "retune"      # one strategy's
    quantmesh flatten --reason "end of drill"                        # close every position
    quantmesh flatten --strategy ma_cross --instrument USD_JPY --reason "stop this one"

flatten cancels the matching open orders first, then closes each position with a
reduce-only market order (recorded like any order, strategy the position's, client id
"flatten-..."); it passes a global lock. The order plane's address comes from --address,
else QUANTMESH_ORDER_ADDR (default 127.0.0.1:50053); the token from QUANTMESH_TOKEN (the
operator role is needed when tokens are configured); TLS from QUANTMESH_TLS_CA (and
QUANTMESH_TLS_CERT/KEY), as the planes dial each other.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.cli.dial import call_plane
from services.cli.flags import table
from services.common.wire import SIDE_FROM_PROTO, order_state_name

DEFAULT_ADDRESS = "127.0.0.1:50053"


def add_orders_parsers(subparsers) -> None:
    for name, text in (("flatten", "close positions with reduce-only market orders (passes a lock)"),
                       ("cancel-open", "cancel every open order, or one strategy's or instrument's")):
        parser = subparsers.add_parser(name, help=text, description=__doc__,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--strategy", metavar="SLUG", default="", help="only this strategy")
        parser.add_argument("--instrument", default="", help="only this instrument, e.g. USD_JPY")
        parser.add_argument("--reason", required=True, help="why; recorded with every order it touches")
        parser.add_argument("--address", default=None,
                            help=f"order plane address (default: $QUANTMESH_ORDER_ADDR or {DEFAULT_ADDRESS})")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
        parser.set_defaults(run=run_orders)


def run_orders(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    filters = {"strategy_slug": args.strategy, "instrument": args.instrument, "reason": args.reason}
    failures: list[str] = []

    async def act(channel) -> None:
        stub = order_pb2_grpc.OrderStub(channel)
        if args.command == "flatten":
            reply = await stub.Flatten(order_pb2.FlattenRequest(**filters), timeout=args.timeout)
            print(f"canceled {len(reply.canceled)} open order(s) first", file=out)
            print(_orders("closing orders", reply.orders), file=out)
        else:
            reply = await stub.CancelOpen(order_pb2.CancelOpenRequest(**filters), timeout=args.timeout)
            print(_orders("canceled", reply.canceled), file=out)
        failures.extend(reply.failures)

    code = call_plane("order", args.address, act, err)
    for failure in failures:
        print(f"FAILED: {failure}", file=err)
    return code or (1 if failures else 0)


def _orders(title: str, orders) -> str:
    if not orders:
        return f"{title}: none"
    rows = [(o.order_id, o.intent.client_order_id, o.intent.strategy_slug, o.intent.instrument,
             SIDE_FROM_PROTO.get(o.intent.side, "?"), o.intent.quantity, order_state_name(o.state))
            for o in orders]
    return f"{title}:\n" + table(("order", "client id", "strategy", "instrument", "side", "quantity", "state"), rows)
