"""Offline checks of the Kubernetes deployment (no cluster, no Docker).

1. `kubectl kustomize` renders the base and every overlay, and every object validates strictly
   against the Kubernetes schema.
2. Structure: hardened pods, named gRPC ports and grpc probes, a Service per plane, the
   NetworkPolicies as a trader would want them (evaluated, not just listed), a worker pair per
   chosen strategy, secrets that agree with each other.
3. What the manifests say is what the code accepts: every variable is read by the code, the
   strategy params load, and the planes and one worker pair actually start from the rendered
   command and environment (Service DNS names mapped to loopback ports, DATABASE_URL to a test
   database, the Jaeger endpoint to a local OTLP sink).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.cli.certs import KUBERNETES_SERVICES
from services.common.auth import Role, TokenTable, bearer_metadata
from services.strategies.registry import load_strategy
from tests.deploy.k8s import (BASE, K8S, KUBE_DNS, OVERLAYS, PLANES, Endpoint, connection_allowed,
                              container_env, endpoint_of, internet, named, of_kind, plane_workload, pod_spec,
                              render, secret_values, uses_quantmesh_image, worker_workloads, workloads)
from tests.support.grpcurl import grpcurl
from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT
from tests.support.processes import PlaneProcess

KUSTOMIZATIONS = (BASE, *OVERLAYS)
K8S_VERSION = kubernetes_validate.latest_version()
WORKER_ROLES = ("entry", "exit")
#: Variables the manifests set that our code does not read itself, and who does.
READ_ELSEWHERE = {"OTEL_SERVICE_NAME": "the OpenTelemetry SDK (resource detector)"}
#: Where every quantmesh container finds the Secret quantmesh-tls (tls-config in the base points here).
TLS_MOUNT = "/etc/quantmesh/tls"
TLS_VARIABLES = ("QUANTMESH_TLS_CERT", "QUANTMESH_TLS_KEY", "QUANTMESH_TLS_CA")

by_folder = pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.relative_to(K8S).as_posix())
by_overlay = pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)


def quantmesh_containers(objects):
    for workload in of_kind(objects, "Deployment"):
        for container in pod_spec(workload)["containers"]:
            if uses_quantmesh_image(container):
                yield workload, container


def grpc_port(container, name: str = "grpc") -> int:
    ports = [p for p in container.get("ports", ()) if p.get("name") == name]
    assert len(ports) == 1, f"{container['name']} must name exactly one port {name!r}, has {container.get('ports')}"
    return ports[0]["containerPort"]


def tls_secret(objects) -> dict:
    """The Secret every quantmesh pod mounts at TLS_MOUNT (its generated name carries a hash)."""
    names = {v["secret"]["secretName"] for w, _ in quantmesh_containers(objects) for v in pod_spec(w)["volumes"]
             if v["name"] == "tls"}
    assert len(names) == 1, names
    return named(objects, "Secret", names.pop())


def chosen_strategies(overlay: Path) -> dict[str, dict[str, str]]:
    return yaml.safe_load((overlay / "strategies.yaml").read_text())


# ---- 1. rendering and schema ---------------------------------------------------------------

@by_folder
def test_kustomize_renders(folder):
    objects = render(folder)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "Service", "StatefulSet", "NetworkPolicy", "Secret", "ConfigMap"} <= kinds
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"quantmesh"}


@by_folder
def test_every_object_validates_strictly(folder):
    for obj in render(folder):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field():
    deployment = json.loads(json.dumps(plane_workload(render(OVERLAYS[0]), "order")))
    pod_spec(deployment)["containers"][0]["readinessProbes"] = {"grpc": {"port": 50053}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# ---- 2. structure -------------------------------------------------------------------------------

@by_folder
def test_every_pod_is_non_root_read_only_and_bounded(folder):
    for workload in workloads(render(folder)):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
        writable = {v["name"] for v in spec.get("volumes", ()) if "emptyDir" in v}
        for container in spec["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{where} {bound}"
            # A read-only root needs somewhere to write: /tmp (HOME, TMPDIR, data dir) on an emptyDir.
            tmp = [m for m in container.get("volumeMounts", ()) if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in writable, f"{where} has no /tmp emptyDir"


@by_folder
def test_quantmesh_containers_serve_grpc_with_probes_tokens_and_tracing(folder):
    objects = render(folder)
    containers = list(quantmesh_containers(objects))
    assert containers
    for workload, container in containers:
        where = workload["metadata"]["name"]
        port = grpc_port(container)
        assert pod_spec(workload)["securityContext"]["runAsUser"] == 10001, where
        assert container["securityContext"]["runAsUser"] == 10001, where
        assert "command" not in container, f"{where}: the image's ENTRYPOINT is python -m; set args only"
        assert container["args"][0].startswith("services."), where
        # Probes ask the plaintext health port: kubelet's grpc probes cannot speak TLS.
        health = grpc_port(container, "health")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health, f"{where} {probe}"
            assert container[probe]["grpc"].get("service", "") == "", f"{where} {probe}"
        env = container_env(objects, container)
        assert env["QUANTMESH_LISTEN"] == f"0.0.0.0:{port}", where
        assert env["QUANTMESH_HEALTH_LISTEN"] == f"0.0.0.0:{health}", where
        # Off loopback a plane refuses plaintext: TLS from the mounted Secret, not "a mesh does it".
        assert all(env[name].startswith(f"{TLS_MOUNT}/") for name in TLS_VARIABLES), where
        assert env.get("QUANTMESH_TLS_BY_SERVICE_MESH", "false") == "false", where
        mounts = [m for m in container["volumeMounts"] if m["mountPath"] == TLS_MOUNT]
        assert mounts and mounts[0].get("readOnly") is True, where
        # Not loopback, so the server refuses to start without tokens.
        assert TokenTable.parse(env["QUANTMESH_TOKENS"]), where
        assert TokenTable.parse(env["QUANTMESH_TOKENS"]).lookup(env["QUANTMESH_TOKEN"]) is not None, where
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", where
        # The name each process reports itself (setup_tracing honours OTEL_SERVICE_NAME), so Jaeger
        # shows the names docs/tracing.md lists.
        args = container.get("args", [])
        expected = (f"strategy.{args[1]}.{args[args.index('--role') + 1]}" if args[0] == "services.strategies"
                    else args[0].removeprefix("services."))
        assert env["OTEL_SERVICE_NAME"] == expected, where
        if workload["spec"]["replicas"] == 1:
            assert workload["spec"]["strategy"]["type"] == "Recreate", f"{where}: a single writer never overlaps"


@by_overlay
def test_overlay_uses_the_local_image_without_pulling(overlay):
    for workload, container in quantmesh_containers(render(overlay)):
        assert container["image"] == "quantmesh:dev", workload["metadata"]["name"]
        assert container["imagePullPolicy"] == "IfNotPresent", workload["metadata"]["name"]


@by_folder
def test_every_plane_has_its_deployment_and_service(folder):
    objects = render(folder)
    for plane, (module, port) in PLANES.items():
        deployment = plane_workload(objects, plane)
        container = pod_spec(deployment)["containers"][0]
        assert container["args"] == [module]
        assert grpc_port(container) == port
        assert deployment["spec"]["replicas"] == 1, f"{plane} is a single writer"
        service = named(objects, "Service", plane)
        selector = service["spec"]["selector"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [("grpc", port, "grpc")]


@by_folder
def test_addresses_name_services_that_exist(folder):
    objects = render(folder)
    exposed = {(s["metadata"]["name"], p["port"]) for s in of_kind(objects, "Service") for p in s["spec"]["ports"]}
    for workload, container in quantmesh_containers(objects):
        env = container_env(objects, container)
        targets = [value for name, value in env.items() if name.endswith("_ADDR")]
        assert len(targets) >= 4, workload["metadata"]["name"]  # the four planes, and analysis for workers
        otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        targets.append(f"{otlp.hostname}:{otlp.port}")
        if "DATABASE_URL" in env:
            db = urlsplit(env["DATABASE_URL"])
            targets.append(f"{db.hostname}:{db.port}")
        for address in targets:
            host, _, port = address.rpartition(":")
            assert (host.split(".")[0], int(port)) in exposed, f"{workload['metadata']['name']}: {address}"


@by_folder
def test_secrets_agree_with_each_other(folder):
    objects = render(folder)
    tokens = secret_values(named(objects, "Secret", "quantmesh-tokens"))
    table = TokenTable.parse(tokens["QUANTMESH_TOKENS"])
    for key, role in (("service-token", Role.SERVICE), ("strategy-token", Role.STRATEGY),
                      ("operator-token", Role.OPERATOR)):
        identity = table.lookup(tokens[key])
        assert identity is not None and identity.role is role, key
    db = secret_values(named(objects, "Secret", "postgres"))
    url = urlsplit(db["DATABASE_URL"])
    assert (url.username, url.password, url.path.lstrip("/")) == (
        db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], db["POSTGRES_DB"])
    brokers = secret_values(named(objects, "Secret", "broker-credentials"))
    assert {"OANDA_API_TOKEN", "GMO_API_KEY", "GMO_API_SECRET"} <= set(brokers)
    # Committed values are placeholders that announce themselves.
    for values in (tokens, brokers):
        assert all("replace-me" in v for v in values.values())


@by_overlay
def test_the_tls_secret_holds_a_certificate_our_ca_signed_for_every_service(overlay):
    objects = render(overlay)
    secret = tls_secret(objects)
    assert secret["type"] == "kubernetes.io/tls"
    values = secret_values(secret)
    assert set(values) == {"ca.crt", "tls.crt", "tls.key"}
    ca = x509.load_pem_x509_certificate(values["ca.crt"].encode())
    cert = x509.load_pem_x509_certificate(values["tls.crt"].encode())
    cert.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key(values["tls.key"].encode(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))
    for service in KUBERNETES_SERVICES:
        assert {service, f"{service}.quantmesh.svc", f"{service}.quantmesh.svc.cluster.local"} <= names, service
    # Every address a quantmesh container dials is a name on the certificate.
    for _, container in quantmesh_containers(objects):
        for name, value in container_env(objects, container).items():
            if name.endswith("_ADDR"):
                assert value.rpartition(":")[0] in names, f"{name}={value}"


@by_folder
def test_postgres_is_a_stateful_set_with_a_volume_and_a_headless_service(folder):
    objects = render(folder)
    postgres = named(objects, "StatefulSet", "postgres")
    assert postgres["spec"]["serviceName"] == "postgres"
    assert pod_spec(postgres)["containers"][0]["image"].startswith("postgres:16")
    claim = postgres["spec"]["volumeClaimTemplates"][0]
    mounts = pod_spec(postgres)["containers"][0]["volumeMounts"]
    assert any(m["name"] == claim["metadata"]["name"] for m in mounts)
    assert named(objects, "Service", "postgres")["spec"]["clusterIP"] == "None"
    password = pod_spec(postgres)["containers"][0]["env"]
    assert {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "postgres", "key": "POSTGRES_PASSWORD"}}} in password


@by_folder
def test_jaeger_takes_otlp_grpc_and_serves_its_ui(folder):
    objects = render(folder)
    jaeger = named(objects, "Deployment", "jaeger")
    container = pod_spec(jaeger)["containers"][0]
    assert container["image"].startswith("jaegertracing/all-in-one:")
    assert {"name": "COLLECTOR_OTLP_ENABLED", "value": "true"} in container["env"]
    service_ports = {p["port"] for p in named(objects, "Service", "jaeger")["spec"]["ports"]}
    assert {4317, 16686} <= service_ports


@by_folder
def test_network_policies_confine_strategies_brokers_and_postgres(folder):
    objects = render(folder)
    planes = {plane: endpoint_of(plane_workload(objects, plane)) for plane in PLANES}
    postgres = endpoint_of(named(objects, "StatefulSet", "postgres"))
    jaeger = endpoint_of(named(objects, "Deployment", "jaeger"))
    strategy = Endpoint(labels={"app.kubernetes.io/component": "strategy", "app.kubernetes.io/part-of": "quantmesh",
                                "app.kubernetes.io/name": "strategy-x-entry"}, ports={"grpc": 50060})
    broker = internet()

    def allowed(source, target, port, protocol="TCP"):
        return connection_allowed(objects, source, target, port, protocol)

    # Strategies: the four planes, DNS and Jaeger; never PostgreSQL, a broker or each other.
    for plane, endpoint in planes.items():
        port = PLANES[plane][1]
        assert allowed(strategy, endpoint, port), f"strategy -> {plane}:{port}"
        assert not allowed(strategy, endpoint, port + 100), f"strategy -> {plane}:{port + 100}"
    assert allowed(strategy, KUBE_DNS, 53, "UDP") and allowed(strategy, KUBE_DNS, 53, "TCP")
    assert allowed(strategy, jaeger, 4317)
    assert not allowed(strategy, jaeger, 16686)
    assert not allowed(strategy, postgres, 5432)
    assert not allowed(strategy, broker, 443)
    assert not allowed(strategy, strategy, 50060)
    # Brokers: only the order plane, only HTTPS, only outside the private ranges.
    assert allowed(planes["order"], broker, 443)
    assert not allowed(planes["order"], broker, 80)
    assert not allowed(planes["order"], internet("10.1.2.3"), 443)
    for plane in ("market-data", "control", "position"):
        assert not allowed(planes[plane], broker, 443), f"{plane} -> broker"
    # PostgreSQL: the planes that own a schema, nobody else.
    for plane, endpoint in planes.items():
        assert allowed(endpoint, postgres, 5432), f"{plane} -> postgres"
    assert not allowed(jaeger, postgres, 5432)
    # The planes reach each other, and everyone reaches Jaeger's collector.
    assert allowed(planes["order"], planes["position"], 50054)
    assert allowed(planes["position"], planes["order"], 50053)
    assert allowed(planes["order"], jaeger, 4317)
    # Something outside the namespace (another tenant's pod) reaches nothing.
    stranger = Endpoint(labels={"app.kubernetes.io/component": "strategy"}, namespace="default")
    assert not allowed(stranger, planes["order"], 50053)


@by_overlay
def test_workers_cover_entry_and_exit_of_every_chosen_strategy(overlay):
    objects = render(overlay)
    chosen = chosen_strategies(overlay)
    if overlay.name == "kind":
        assert set(chosen) == {"ma_cross", "rsi_threshold", "bollinger_touch"}
    commands = sorted(tuple(pod_spec(w)["containers"][0]["args"]) for w in worker_workloads(objects))
    expected = sorted(("services.strategies", slug, "--role", role) for slug in chosen for role in WORKER_ROLES)
    assert commands == expected
    for worker in worker_workloads(objects):
        assert worker["spec"]["replicas"] == 1
        container = pod_spec(worker)["containers"][0]
        slug = container["args"][1]
        params = json.loads(container_env(objects, container)["QUANTMESH_STRATEGY_PARAMS"])
        assert params == chosen[slug], worker["metadata"]["name"]


@by_overlay
def test_strategy_params_load_in_their_strategies(overlay):
    for slug, params in chosen_strategies(overlay).items():
        strategy = load_strategy(slug, params)
        for name, text in params.items():
            assert str(getattr(strategy.params, name)) == text, f"{slug}.{name}"


def test_a_wrong_strategy_param_is_refused():
    with pytest.raises(ValueError, match="fast_period"):
        load_strategy("ma_cross", {"fast_period": "ten"})


def _render_workers_module():
    spec = importlib.util.spec_from_file_location("render_workers", K8S / "render_workers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@by_overlay
def test_committed_workers_are_what_the_script_renders(overlay):
    result = subprocess.run([sys.executable, str(K8S / "render_workers.py"), str(overlay), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    renderer = _render_workers_module()
    strategies = renderer.read_strategies(overlay / "strategies.yaml")
    assert renderer.render(strategies) == (overlay / "workers.yaml").read_text()
    strategies[next(iter(strategies))]["warmup_bars"] = "300"
    assert renderer.render(strategies) != (overlay / "workers.yaml").read_text()


def test_render_workers_refuses_unquoted_params(tmp_path):
    (tmp_path / "strategies.yaml").write_text("ma_cross:\n  fast_period: 10\n")
    result = subprocess.run([sys.executable, str(K8S / "render_workers.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ma_cross.fast_period=10 must be a quoted string" in result.stderr
    assert not (tmp_path / "workers.yaml").exists()


# ---- 3. the code accepts what the manifests say --------------------------------------------------

def _source_of(module: str) -> str:
    package = PROJECT_ROOT / Path(*module.split(".")[:2])
    files = [*package.rglob("*.py"), *(PROJECT_ROOT / "services" / "common").rglob("*.py")]
    return "\n".join(p.read_text() for p in files)


@by_overlay
def test_every_command_names_a_module_and_every_variable_is_read_by_it(overlay):
    objects = render(overlay)
    for workload, container in quantmesh_containers(objects):
        module = container["args"][0]
        where = workload["metadata"]["name"]
        assert importlib.util.find_spec(module) is not None, f"{where}: no module {module}"
        assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{where}: {module} has no __main__"
        source = _source_of(module)
        unread = [name for name in container_env(objects, container)
                  if name not in READ_ELSEWHERE and f'"{name}"' not in source]
        assert not unread, f"{where}: {module} never reads {unread}"


class SpanSink(trace_service_pb2_grpc.TraceServiceServicer):
    """A stand-in for Jaeger's OTLP gRPC receiver: remembers which services sent spans."""

    def __init__(self) -> None:
        self.services: set[str] = set()
        self._lock = threading.Lock()

    def Export(self, request, context):
        with self._lock:
            for resource_spans in request.resource_spans:
                for attribute in resource_spans.resource.attributes:
                    if attribute.key == "service.name":
                        self.services.add(attribute.value.string_value)
        return trace_service_pb2.ExportTraceServiceResponse()


class LocalMesh:
    """The rendered planes, run as local processes with cluster addresses mapped to loopback."""

    def __init__(self, objects, database_url: str, log_dir: Path, otlp_port: int) -> None:
        self.objects = objects
        self.database_url = database_url
        self.log_dir = log_dir
        self.otlp_port = otlp_port
        self.local_ports = {plane: free_port() for plane in PLANES}
        self.processes: list[PlaneProcess] = []
        self.health: dict[PlaneProcess, str] = {}
        # The Secret's files, as the pod would see them under TLS_MOUNT.
        self.tls_dir = log_dir / "tls"
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        for key, text in secret_values(tls_secret(objects)).items():
            (self.tls_dir / key).write_text(text)

    def credentials(self, *, with_certificate: bool = False) -> grpc.ChannelCredentials:
        read = lambda name: (self.tls_dir / name).read_bytes()  # noqa: E731
        if with_certificate:
            return grpc.ssl_channel_credentials(read("ca.crt"), read("tls.key"), read("tls.crt"))
        return grpc.ssl_channel_credentials(read("ca.crt"))

    def local_env(self, container, listen_port: int) -> dict[str, str]:
        env = container_env(self.objects, container)
        for name, value in list(env.items()):
            if name.endswith("_ADDR"):
                host, _, port = value.rpartition(":")
                service = host.split(".")[0]
                assert PLANES[service][1] == int(port), f"{name}={value}"
                env[name] = f"127.0.0.1:{self.local_ports[service]}"
        if "DATABASE_URL" in env:
            env["DATABASE_URL"] = self.database_url
        assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).hostname == "jaeger"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{self.otlp_port}"
        env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # export quickly, so the sink sees spans soon
        env["QUANTMESH_LISTEN"] = f"127.0.0.1:{listen_port}"
        env["QUANTMESH_HEALTH_LISTEN"] = f"127.0.0.1:{free_port()}"
        env["QUANTMESH_DATA_DIR"] = str(self.log_dir / "data")
        for name, value in list(env.items()):
            if value.startswith(f"{TLS_MOUNT}/"):
                env[name] = str(self.tls_dir / value.removeprefix(f"{TLS_MOUNT}/"))
        return env

    def start(self, container, listen_port: int, **env_overrides: str) -> PlaneProcess:
        env = {**self.local_env(container, listen_port), **env_overrides}
        module, *args = container["args"]
        process = PlaneProcess(module, env, self.log_dir, args=tuple(args)).start()
        self.processes.append(process)
        self.health[process] = env["QUANTMESH_HEALTH_LISTEN"]
        return process

    def wait_healthy(self, process: PlaneProcess, timeout: float = 90) -> None:
        """As kubelet would ask: plaintext health on the health port."""
        process.wait_healthy(self.health[process], timeout=timeout)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()


@pytest.fixture(scope="module")
def otlp_sink():
    sink = SpanSink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield sink, port
    server.stop(0)


@pytest.fixture(scope="module")
def mesh(database_url, tmp_path_factory, otlp_sink):
    """The four planes of the first overlay, started from their rendered args and env."""
    objects = render(OVERLAYS[0])
    local = LocalMesh(objects, database_url, tmp_path_factory.mktemp("mesh"), otlp_sink[1])
    try:
        started = {}
        for plane in PLANES:
            container = pod_spec(plane_workload(objects, plane))["containers"][0]
            started[plane] = local.start(container, local.local_ports[plane])
        for process in started.values():
            local.wait_healthy(process)
        yield local
    finally:
        local.stop()


def test_planes_start_from_the_rendered_command_and_environment_and_serve_tls_only(mesh):
    for plane, process in zip(PLANES, mesh.processes[:len(PLANES)]):
        assert process.module == PLANES[plane][0]
        assert process.proc.poll() is None, f"{plane} exited:\n{process.tail()}"
        address = f"127.0.0.1:{mesh.local_ports[plane]}"
        with grpc.secure_channel(address, mesh.credentials()) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, plane
        with grpc.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as plaintext:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert plaintext.value.code() is grpc.StatusCode.UNAVAILABLE, plane


def test_grpcurl_reaches_the_rendered_planes_over_tls_and_not_in_plaintext(mesh):
    address = f"127.0.0.1:{mesh.local_ports['order']}"
    listed = grpcurl("-cacert", str(mesh.tls_dir / "ca.crt"), address, "list")
    assert listed.returncode == 0, listed.stderr
    assert "quantmesh.order.v1.Order" in listed.stdout.split()
    assert grpcurl("-plaintext", address, "list").returncode != 0


def test_the_rendered_planes_dial_each_other_over_tls(mesh):
    """An order is accepted only when the order plane has control's flags and position's exposure:
    both reach it over TLS, dialed from the rendered config."""
    container = pod_spec(plane_workload(mesh.objects, "order"))["containers"][0]
    tokens = TokenTable.parse(container_env(mesh.objects, container)["QUANTMESH_TOKENS"])
    operator = next(token for token, who in tokens.entries.items() if who.role is Role.OPERATOR)
    deadline = time.monotonic() + 90  # a wait for the planes to find each other, not a timing assertion
    refusals = []
    with grpc.secure_channel(f"127.0.0.1:{mesh.local_ports['order']}", mesh.credentials()) as channel:
        stub = order_pb2_grpc.OrderStub(channel)
        while time.monotonic() < deadline:
            intent = order_pb2.OrderIntent(
                client_order_id=f"tls-{len(refusals)}", strategy_slug="manual", instrument="USD_JPY",
                role=common_pb2.StrategyRole.Value("STRATEGY_ROLE_ENTRY"), side=common_pb2.Side.Value("SIDE_BUY"),
                quantity="1000", order_type=order_pb2.OrderType.Value("ORDER_TYPE_MARKET"))
            try:
                reply = stub.Submit(order_pb2.SubmitRequest(intent=intent), metadata=bearer_metadata(operator),
                                    timeout=10)
            except grpc.RpcError as exc:
                refusals.append(f"{exc.code().name}: {exc.details()}")
                time.sleep(0.5)
                continue
            assert reply.order.intent.client_order_id == intent.client_order_id
            return
    raise AssertionError(f"no order accepted; refusals: {refusals[-3:]}\n{mesh.processes[2].tail()}")


def test_planes_export_spans_to_the_configured_endpoint(mesh, otlp_sink):
    sink, _ = otlp_sink
    deadline = time.monotonic() + 30  # a wait for spans to arrive, not a timing assertion
    while len(sink.services) < len(PLANES) and time.monotonic() < deadline:
        time.sleep(0.2)
    print("services that sent spans:", sorted(sink.services))
    assert len(sink.services) >= len(PLANES), f"spans arrived only from {sorted(sink.services)}"


def test_a_worker_pair_starts_and_runs_its_configured_strategy(mesh):
    workers = worker_workloads(mesh.objects)
    slug = pod_spec(workers[0])["containers"][0]["args"][1]
    pair = [w for w in workers if pod_spec(w)["containers"][0]["args"][1] == slug]
    assert len(pair) == 2
    for worker in pair:
        container = pod_spec(worker)["containers"][0]
        role = container["args"][3]
        port = free_port()
        process = mesh.start(container, port)
        mesh.wait_healthy(process)
        env = container_env(mesh.objects, container)
        with grpc.secure_channel(f"127.0.0.1:{port}", mesh.credentials()) as channel:
            status = strategy_pb2_grpc.StrategyStub(channel).GetStatus(
                strategy_pb2.GetStatusRequest(), metadata=bearer_metadata(env["QUANTMESH_TOKEN"]), timeout=10)
        assert status.slug == slug
        assert status.role == common_pb2.StrategyRole.Value(f"STRATEGY_ROLE_{role.upper()}")
        for name, text in json.loads(env["QUANTMESH_STRATEGY_PARAMS"]).items():
            assert status.params[name] == text, name


def test_a_worker_with_a_wrong_param_stops_with_a_sentence(mesh):
    worker = worker_workloads(mesh.objects)[0]
    container = pod_spec(worker)["containers"][0]
    slug = container["args"][1]
    known = load_strategy(slug, {}).params
    bad_name = next(name for name in ("fast_period", "period") if hasattr(known, name))
    process = mesh.start(container, free_port(), QUANTMESH_STRATEGY_PARAMS=json.dumps({bad_name: "ten"}))
    assert process.proc.wait(60) != 0
    assert bad_name in process.tail()


def test_a_plane_off_loopback_refuses_to_start_without_tokens(database_url, tmp_path):
    objects = render(OVERLAYS[0])
    container = pod_spec(plane_workload(objects, "control"))["containers"][0]
    env = {**container_env(objects, container), "DATABASE_URL": database_url,
           "QUANTMESH_LISTEN": f"0.0.0.0:{free_port()}", "QUANTMESH_TOKENS": "",
           "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    process = PlaneProcess(container["args"][0], env, tmp_path).start()
    try:
        assert process.proc.wait(60) == 2
        assert re.search(r"QUANTMESH_TOKENS must be set", process.tail())
    finally:
        process.kill()


def test_a_plane_off_loopback_refuses_to_serve_tokens_in_plaintext(database_url, tmp_path):
    objects = render(OVERLAYS[0])
    container = pod_spec(plane_workload(objects, "control"))["containers"][0]
    env = {name: value for name, value in container_env(objects, container).items() if name not in TLS_VARIABLES}
    env.update({"DATABASE_URL": database_url, "QUANTMESH_LISTEN": f"0.0.0.0:{free_port()}",
                "OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    process = PlaneProcess(container["args"][0], env, tmp_path).start()
    try:
        assert process.proc.wait(60) == 2
        assert "bearer tokens would cross the network in plaintext" in process.tail()
    finally:
        process.kill()


# ---- the image ------------------------------------------------------------------------------------

DOCKERFILE = PROJECT_ROOT / "Dockerfile"


def test_dockerfile_runs_every_plane_as_non_root_from_one_image():
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2, "a builder stage and a runtime stage"
    assert "python:3.11-slim" in re.search(r"^ARG PYTHON_IMAGE=(.+)$", text, re.M).group(1)
    runtime = stages[-1]
    assert re.search(r"^USER 10001(:10001)?$", runtime, re.M)
    assert re.search(r'^ENTRYPOINT \["python", "-m"\]$', runtime, re.M)
    copies = re.findall(r"^COPY (.+)$", runtime, re.M)
    assert copies == ["--from=builder /opt/venv /opt/venv", "services /app/services", "gen /app/gen"]
    dockerignore = [line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert dockerignore[:4] == ["*", "!pyproject.toml", "!services/", "!gen/"]


def test_every_deployed_module_imports_without_what_the_image_leaves_out():
    """The image has no pgserver or grpcio-tools: importing a deployed module must not need them."""
    left_out = re.search(r'^ARG LEAVE_OUT="(.+)"$', DOCKERFILE.read_text(), re.M).group(1).split()
    blocked = {"pgserver": "pgserver", "grpcio-tools": "grpc_tools"}
    modules = sorted({c["args"][0] for overlay in OVERLAYS for _, c in quantmesh_containers(render(overlay))})
    probe = (
        "import importlib, sys\n"
        f"for name in {[blocked[p] for p in left_out]!r}:\n"
        "    sys.modules[name] = None  # import now raises ImportError, as in the image\n"
        f"for module in {[m + '.__main__' for m in modules]!r}:\n"
        "    importlib.import_module(module)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_kind_cluster_has_one_control_plane_node():
    cluster = yaml.safe_load((PROJECT_ROOT / "deploy" / "kind" / "cluster.yaml").read_text())
    assert (cluster["kind"], cluster["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert cluster["name"] == "quantmesh"
    assert [node["role"] for node in cluster["nodes"]] == ["control-plane"]
