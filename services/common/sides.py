"""The contract's Side enum in the traders' words ("buy" / "sell"), both ways, for every plane."""

from __future__ import annotations

from quantmesh.common.v1 import common_pb2

#: Wire value -> word. SIDE_UNSPECIFIED is absent on purpose: each caller decides what it means.
SIDE_NAMES: dict[int, str] = {common_pb2.SIDE_BUY: "buy", common_pb2.SIDE_SELL: "sell"}
#: Word -> wire value.
SIDE_VALUES: dict[str, int] = {name: value for value, name in SIDE_NAMES.items()}
