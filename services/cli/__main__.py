"""quantmesh: run the mesh, backtest a strategy, inspect and steer a running mesh."""

from __future__ import annotations

import os

# gRPC's C core logs an INFO line when a process forks while its threads run (every plane the
# CLI starts); the line means nothing to a user. Set before grpc is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import argparse  # noqa: E402
import asyncio
import logging
import sys

from services.cli.analysis import add_analysis_parser, run_analysis
from services.cli.backtest import add_backtest_parser, run_backtest
from services.cli.certs import add_certs_parser, run_certs
from services.cli.optimize import add_optimize_parser, run_optimize
from services.cli.orders import add_orders_parsers, run_orders
from services.cli.status import add_status_parser, run_status
from services.cli.up import add_up_parser, run_up


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantmesh", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_up_parser(sub)
    add_status_parser(sub)
    add_backtest_parser(sub)
    add_optimize_parser(sub)
    add_analysis_parser(sub)
    add_certs_parser(sub)
    add_orders_parsers(sub)
    try:
        from services.cli.flags import add_flags_parser
    except ImportError:  # the flags CLI arrives with the control plane
        pass
    else:
        add_flags_parser(sub)
        from services.cli.flags import add_audit_parser

        add_audit_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its INFO lines drown the launcher's own
    import warnings

    warnings.filterwarnings("ignore", module="platformdirs")
    if args.command == "up":
        return asyncio.run(run_up(args))
    if args.command == "backtest":
        logging.getLogger().setLevel(logging.WARNING)  # the report is the output; strategy logs stay quiet
        return asyncio.run(run_backtest(args))
    if args.command == "optimize":
        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(run_optimize(args))
    if args.command == "analysis":
        return run_analysis(args)
    if args.command == "certs":
        return run_certs(args)
    if args.command == "status":
        return asyncio.run(run_status(args))
    if args.command in ("flatten", "cancel-open"):
        return run_orders(args)
    if args.command == "audit":
        from services.cli.flags import run_audit

        return run_audit(args)
    if args.command == "flags":
        from services.cli.flags import run_flags

        return run_flags(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
