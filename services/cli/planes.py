"""The four planes as processes: what `quantmesh up` and `quantmesh backtest --mesh` both start."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.cli.supervisor import ProcessSpec

#: Start order: each plane finds the ones before it answering.
PLANES = ("control", "market_data", "order", "position")
#: Where `quantmesh up` serves each process's /metrics (deploy/prometheus/prometheus.yml scrapes these);
#: the strategy workers take WORKER_METRICS_BASE_PORT and up, in the order they start. Clear of 9464,
#: the port every pod uses in the cluster (a local run of the rendered manifests binds it too).
METRICS_PORTS: Mapping[str, int] = {"market_data": 9451, "control": 9452, "order": 9453, "position": 9454,
                                    "console": 9455, "analysis": 9456}
WORKER_METRICS_BASE_PORT = 9470


def plane_specs(addresses: Mapping[str, str], *, instrument: str,
                env: Mapping[str, Mapping[str, str]] | None = None) -> list[ProcessSpec]:
    """One spec per plane in start order; `env` adds variables per plane (the feed, limits, cash)."""
    own = {"market_data": {"QUANTMESH_INSTRUMENTS": instrument}, "order": {"QUANTMESH_INSTRUMENTS": instrument}}
    return [ProcessSpec(name=plane, module=f"services.{plane}", address=addresses[plane],
                        env={"QUANTMESH_LISTEN": addresses[plane], **own.get(plane, {}), **(env or {}).get(plane, {})})
            for plane in PLANES]


def mesh_env(addresses: Mapping[str, str], *, database_url: str, data_dir: Path) -> dict[str, str]:
    """What every process of one mesh shares: the database and where each plane listens."""
    shared = {"DATABASE_URL": database_url, "QUANTMESH_DATA_DIR": str(data_dir),
              "QUANTMESH_MARKET_DATA_ADDR": addresses["market_data"], "QUANTMESH_CONTROL_ADDR": addresses["control"],
              "QUANTMESH_ORDER_ADDR": addresses["order"], "QUANTMESH_POSITION_ADDR": addresses["position"]}
    # Workers follow the analysis plane only where the mesh runs one (`quantmesh up`; not a --mesh backtest).
    return {**shared, "QUANTMESH_ANALYSIS_ADDR": addresses["analysis"]} if "analysis" in addresses else shared


def analysis_spec(address: str) -> ProcessSpec:
    """The analysis plane: signals, performance, the allocation policy (after the planes, before the workers)."""
    return ProcessSpec(name="analysis", module="services.analysis", address=address, env={"QUANTMESH_LISTEN": address})


def console_spec(*, health: str, http: str, workers: Sequence[str]) -> ProcessSpec:
    """The operator's console: its page and API on `http`, its gRPC health on `health` (what the
    supervisor waits on), asking each of `workers` for its status."""
    return ProcessSpec(name="console", module="services.console", address=health,
                       env={"QUANTMESH_LISTEN": health, "QUANTMESH_CONSOLE_LISTEN": http,
                            "QUANTMESH_CONSOLE_WORKERS": ",".join(workers)})


def with_metrics(spec: ProcessSpec, port: int) -> ProcessSpec:
    """`spec` serving its Prometheus metrics on loopback `port`."""
    return dataclasses.replace(spec, env={**spec.env, "QUANTMESH_METRICS_LISTEN": f"127.0.0.1:{port}"})
