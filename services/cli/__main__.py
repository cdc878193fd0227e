"""quantmesh: run the mesh, backtest a strategy, inspect and steer a running mesh."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantmesh", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run every plane locally on an embedded PostgreSQL")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        print("quantmesh up: the planes are not built yet; run ./qm test to check the foundation.")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
