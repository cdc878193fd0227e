"""The four planes as processes: what `quantmesh up` and `quantmesh backtest --mesh` both start."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from services.cli.supervisor import ProcessSpec

#: Start order: each plane finds the ones before it answering.
PLANES = ("control", "market_data", "order", "position")


def plane_specs(addresses: Mapping[str, str], *, instrument: str,
                env: Mapping[str, Mapping[str, str]] | None = None) -> list[ProcessSpec]:
    """One spec per plane in start order; `env` adds variables per plane (the feed, limits, cash)."""
    own = {"market_data": {"QUANTMESH_INSTRUMENTS": instrument}, "order": {"QUANTMESH_INSTRUMENTS": instrument}}
    return [ProcessSpec(name=plane, module=f"services.{plane}", address=addresses[plane],
                        env={"QUANTMESH_LISTEN": addresses[plane], **own.get(plane, {}), **(env or {}).get(plane, {})})
            for plane in PLANES]


def mesh_env(addresses: Mapping[str, str], *, database_url: str, data_dir: Path) -> dict[str, str]:
    """What every process of one mesh shares: the database and where each plane listens."""
    return {"DATABASE_URL": database_url, "QUANTMESH_DATA_DIR": str(data_dir),
            "QUANTMESH_MARKET_DATA_ADDR": addresses["market_data"], "QUANTMESH_CONTROL_ADDR": addresses["control"],
            "QUANTMESH_ORDER_ADDR": addresses["order"], "QUANTMESH_POSITION_ADDR": addresses["position"]}
