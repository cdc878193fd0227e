"""The console, Prometheus and Grafana in deploy/: what the manifests say is what the code accepts,
the network lets the console and Prometheus reach what they need and nothing more, and every
metric the scrape rules and the dashboard ask for is one the code defines."""

from __future__ import annotations

import argparse
import json
import re
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.cli.planes import METRICS_PORTS
from services.cli.up import add_up_parser, plan
from services.common.config import DEFAULT_PORTS
from services.common.metrics import OrderFlow, ProcessMetrics
from services.common.streams import Broadcaster
from services.console.alerts import AlertSettings, WebhookNotifier
from tests.deploy.k8s import (OVERLAYS, PLANES, Endpoint, connection_allowed, container_env, endpoint_of, internet,
                              named, of_kind, plane_workload, pod_spec, render, worker_workloads)
from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT
from tests.support.processes import PlaneProcess

KIND = next(o for o in OVERLAYS if o.name == "kind")
PROMETHEUS = PROJECT_ROOT / "deploy" / "prometheus"
DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "quantmesh.json"


def console_workload(objects):
    return named(objects, "Deployment", "console")


def test_the_console_has_its_deployment_and_service():
    objects = render(KIND)
    container = pod_spec(console_workload(objects))["containers"][0]
    assert container["args"] == ["services.console"] and container["image"] == "quantmesh:dev"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports.items() >= {"http": 8470, "grpc": 50055, "metrics": 9464}.items()
    service = named(objects, "Service", "console")
    assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} == {("http", 8470), ("grpc", 50055)}
    env = container_env(objects, container)
    assert env["QUANTMESH_CONSOLE_LISTEN"] == "0.0.0.0:8470" and env["QUANTMESH_CONSOLE_USERS"]
    assert env["QUANTMESH_CONSOLE_WORKERS"] == "strategy-workers:50060"
    workers = named(objects, "Service", "strategy-workers")
    assert workers["spec"]["clusterIP"] == "None"
    assert all(workers["spec"]["selector"].items() <= pod_spec_labels(w).items() for w in worker_workloads(objects))


def test_the_console_starts_from_its_rendered_command_and_environment(tmp_path):
    """As tests/deploy does for the planes: cluster addresses mapped to loopback (where plaintext is
    allowed, so the cluster's TLS files are left out: tests/deploy checks them), the rest as rendered.
    The operators Secret must parse, or the console would not start in the cluster either."""
    objects = render(KIND)
    container = pod_spec(console_workload(objects))["containers"][0]
    env = container_env(objects, container)
    nowhere = {name: f"127.0.0.1:{free_port()}" for name in env if name.endswith("_ADDR")}  # planes down
    health, http, metrics = (f"127.0.0.1:{free_port()}" for _ in range(3))
    env.update(nowhere, QUANTMESH_LISTEN=health, QUANTMESH_CONSOLE_LISTEN=http, QUANTMESH_METRICS_LISTEN=metrics,
               OTEL_EXPORTER_OTLP_ENDPOINT="", QUANTMESH_DATA_DIR=str(tmp_path))
    env.update({name: "" for name in env if name.startswith("QUANTMESH_TLS_") or name == "QUANTMESH_HEALTH_LISTEN"})
    module, *args = container["args"]
    process = PlaneProcess(module, env, tmp_path, args=tuple(args)).start()
    try:
        process.wait_healthy(health, timeout=60)
        with urllib.request.urlopen(f"http://{http}/healthz", timeout=10) as reply:
            assert reply.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://{http}/api/flags", timeout=10)
        assert refused.value.code == 401, "the rendered operators make the console ask for a sign-in"
    finally:
        process.terminate()


def pod_spec_labels(workload) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def test_network_lets_the_console_and_prometheus_reach_what_they_need_and_nothing_more():
    objects = render(KIND)
    console = endpoint_of(console_workload(objects))
    prometheus = endpoint_of(named(objects, "Deployment", "prometheus"))
    worker = endpoint_of(worker_workloads(objects)[0])
    postgres = endpoint_of(named(objects, "StatefulSet", "postgres"))
    planes = {plane: endpoint_of(plane_workload(objects, plane)) for plane in PLANES}

    def allowed(source, target, port):
        return connection_allowed(objects, source, target, port)

    for plane, endpoint in planes.items():
        assert allowed(console, endpoint, PLANES[plane][1]), f"console -> {plane}"
        assert not allowed(endpoint, console, 8470), f"{plane} -> console page"
        assert allowed(prometheus, endpoint, 9464) and not allowed(prometheus, endpoint, PLANES[plane][1])
    assert allowed(console, worker, 50060) and not allowed(worker, console, 8470)
    assert not allowed(worker, worker, 50060), "the console's rule must not open workers to each other"
    assert allowed(prometheus, worker, 9464) and allowed(prometheus, console, 9464)
    assert not allowed(console, postgres, 5432)
    assert allowed(console, internet(), 443) and not allowed(console, internet("10.1.2.3"), 443)
    assert not allowed(prometheus, internet(), 443)
    stranger = Endpoint(labels={"app.kubernetes.io/component": "monitoring"}, namespace="default")
    assert not allowed(stranger, planes["order"], 9464)


def test_every_quantmesh_pod_serves_metrics_and_prometheus_finds_it_by_a_headless_service():
    objects = render(KIND)
    scrape = yaml.safe_load((PROMETHEUS / "prometheus-kind.yml").read_text())
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in scrape["scrape_configs"]}
    assert set(jobs) == {"market_data", "control", "order", "position", "analysis", "console", "strategy"}
    for workload in of_kind(objects, "Deployment"):
        container = pod_spec(workload)["containers"][0]
        if container["image"] != "quantmesh:dev":
            continue
        assert container_env(objects, container)["QUANTMESH_METRICS_LISTEN"] == "0.0.0.0:9464"
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in container["ports"]
        finders = [name for name, job in jobs.items()
                   if services[job["names"][0].split(".")[0]]["spec"]["selector"].items()
                   <= pod_spec_labels(workload).items()]
        assert len(finders) == 1, f"{workload['metadata']['name']} is scraped by {finders}"
    for job in jobs.values():
        service = services[job["names"][0].split(".")[0]]
        assert service["spec"]["clusterIP"] == "None" and job["port"] == 9464
    config = named(objects, "ConfigMap", next(c["metadata"]["name"] for c in of_kind(objects, "ConfigMap")
                                               if c["metadata"]["name"].startswith("prometheus-config")))
    assert yaml.safe_load(config["data"]["prometheus.yml"]) == scrape
    assert "alerts.yml" in config["data"]


def test_the_local_scrape_config_matches_the_ports_quantmesh_up_gives():
    parser = argparse.ArgumentParser()
    add_up_parser(parser.add_subparsers())
    specs = plan(parser.parse_args(["up"]), {plane: f"127.0.0.1:{port}" for plane, port in DEFAULT_PORTS.items()})
    served = {spec.name: spec.env["QUANTMESH_METRICS_LISTEN"] for spec in specs}
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    for name, port in METRICS_PORTS.items():
        assert targets[name] == [f"127.0.0.1:{port}"] == [served[name]]
    assert targets["strategy"] == [address for name, address in served.items() if "." in name]
    assert len(set(served.values())) == len(served), "two processes on one metrics port"
    console = next(s for s in specs if s.name == "console")
    assert console.env["QUANTMESH_CONSOLE_WORKERS"].split(",") == [s.address for s in specs if "." in s.name]


def defined_metrics() -> set[str]:
    """Every sample name a process can export: each kind of metric watched once."""
    registry = CollectorRegistry()
    status = SimpleNamespace(slug="s", role="entry", state="RUNNING", events=0, intents_submitted=0,
                             intents_rejected=0, skipped_by_flags=0)
    figures = SimpleNamespace(account="a", balance="1", equity="1", drawdown="0", drawdown_fraction="0")
    ProcessMetrics("test", registry).watch(streams=lambda: [Broadcaster(name="s")], trading_state=lambda: None,
                                           account=lambda: figures, worker=status)
    OrderFlow(registry)
    WebhookNotifier(AlertSettings(), registry)
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def used_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bquantmesh_[a-z_]+", text))


@pytest.mark.parametrize("path", [PROMETHEUS / "alerts.yml", DASHBOARD], ids=lambda p: p.name)
def test_alert_rules_and_dashboard_ask_only_for_metrics_the_code_defines(path):
    used = used_metrics(path.read_text())
    assert used, path
    assert used <= defined_metrics(), f"{path.name} asks for {sorted(used - defined_metrics())}"


def test_the_dashboard_is_grafana_json_over_a_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "quantmesh"
    assert [v["type"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    assert all({"alert", "expr", "annotations"} <= set(rule) for rule in rules["groups"][0]["rules"])
