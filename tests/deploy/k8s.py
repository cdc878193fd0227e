"""Offline helpers over the rendered manifests: render, look up, resolve env, evaluate policies.

No cluster is involved: `kubectl kustomize` renders, and the NetworkPolicy evaluator below
implements the documented semantics (policies add up; a pod selected by no policy of a
direction is open in that direction; a rule without `to`/`from` or `ports` matches all).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509

from services.cli.certs import FILES, default_hosts, write_certificates
from services.common.tls import TlsFileError, read_certificates
from tests.support.postgres import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = tuple(sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists()))
NAMESPACE = "quantmesh"

#: The planes: Service/component name -> (python module, gRPC port). Fixed by docs/planes.md.
PLANES: Mapping[str, tuple[str, int]] = {
    "market-data": ("services.market_data", 50051),
    "control": ("services.control", 50052),
    "order": ("services.order", 50053),
    "position": ("services.position", 50054),
    "analysis": ("services.analysis", 50056),
}
QUANTMESH_IMAGE = "quantmesh"


def ensure_certificates(folder: Path) -> None:
    """A set that is there, unexpired and names every host `quantmesh certs` names today; else a new one."""
    try:
        cert = x509.load_pem_x509_certificate(read_certificates(folder / "tls.crt"))
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        named = {str(n.value) for n in names}
        if all((folder / name).exists() for name in FILES) and set(default_hosts()) <= named:
            return
    except TlsFileError:
        pass
    try:
        write_certificates(folder, hosts=default_hosts())  # replaces a stale set whole
    except OSError:
        # Another test run made a set at the same moment: one complete set is all we need.
        if not all((folder / name).exists() for name in FILES):
            raise


@functools.cache
def render(folder: Path) -> tuple[dict, ...]:
    """The objects `kubectl kustomize folder` prints (cached: rendering takes a moment).

    An overlay whose Secret is made from `quantmesh certs` files (nobody commits them) gets a set
    first, as a person would make one before `kubectl apply -k`."""
    if "tls/tls.crt" in (folder / "kustomization.yaml").read_text():
        ensure_certificates(folder / "tls")
    result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: Iterable[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: Iterable[dict], kind: str, name: str) -> dict:
    """The object of `kind` called `name` (generated ConfigMaps are referred to with their hash)."""
    for obj in of_kind(objects, kind):
        if obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"no {kind} named {name}")


def workloads(objects: Iterable[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def component(workload: dict) -> str:
    return pod_labels(workload).get("app.kubernetes.io/component", "")


def uses_quantmesh_image(container: dict) -> bool:
    return container["image"].split(":")[0].rsplit("/", 1)[-1] == QUANTMESH_IMAGE


def plane_workload(objects: Iterable[dict], plane: str) -> dict:
    return next(o for o in of_kind(objects, "Deployment") if component(o) == plane)


def worker_workloads(objects: Iterable[dict]) -> list[dict]:
    return [o for o in of_kind(objects, "Deployment") if component(o) == "strategy"]


def secret_values(secret: dict) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


def container_env(objects: tuple[dict, ...], container: dict) -> dict[str, str]:
    """The environment Kubernetes gives `container`: envFrom first, then env on top."""
    def source(kind: str, name: str) -> dict[str, str]:
        obj = named(objects, kind, name)
        return secret_values(obj) if kind == "Secret" else dict(obj.get("data") or {})

    env: dict[str, str] = {}
    for item in container.get("envFrom", ()):
        kind, ref = ("ConfigMap", item["configMapRef"]) if "configMapRef" in item else ("Secret", item["secretRef"])
        prefix = item.get("prefix", "")
        env.update({prefix + k: v for k, v in source(kind, ref["name"]).items()})
    for item in container.get("env", ()):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            env[item["name"]] = source("Secret", ref["secretKeyRef"]["name"])[ref["secretKeyRef"]["key"]]
        elif "configMapKeyRef" in ref:
            env[item["name"]] = source("ConfigMap", ref["configMapKeyRef"]["name"])[ref["configMapKeyRef"]["key"]]
        else:
            raise AssertionError(f"env {item['name']} uses {sorted(ref)}, which these checks cannot resolve")
    return env


# ---- NetworkPolicy evaluation -------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """A pod (labels, namespace, named ports) or an address outside the cluster."""

    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = NAMESPACE
    ip: str = "10.244.0.10"  # pod IPs of kind's default pod subnet
    ports: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def internet(ip: str = "203.0.113.10") -> Endpoint:
    return Endpoint(labels={}, namespace=None, ip=ip)


KUBE_DNS = Endpoint(labels={"k8s-app": "kube-dns"}, namespace="kube-system", ip="10.96.0.10")


def endpoint_of(workload: dict) -> Endpoint:
    ports = {p["name"]: p["containerPort"] for c in pod_spec(workload)["containers"] for p in c.get("ports", ())
             if "name" in p}
    return Endpoint(labels=pod_labels(workload), namespace=workload["metadata"].get("namespace", NAMESPACE),
                    ports=ports)


def selector_matches(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values", ())
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def _peer_matches(peer: Mapping, other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", ()))
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], _namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), other.labels)


def _port_matches(rule_ports, port: int, protocol: str, target: Endpoint) -> bool:
    if not rule_ports:
        return True
    for item in rule_ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        wanted = item.get("port")
        if wanted is None:
            return True
        number = target.ports.get(wanted) if isinstance(wanted, str) else wanted
        if number is not None and (number == port or number <= port <= item.get("endPort", number)):
            return True
    return False


def _allowed_one_way(policies, subject: Endpoint, other: Endpoint, port: int, protocol: str,
                     direction: str, port_owner: Endpoint) -> bool:
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [p for p in policies
                 if p["metadata"].get("namespace", NAMESPACE) == subject.namespace
                 and direction in p["spec"].get("policyTypes", ["Ingress"])
                 and selector_matches(p["spec"]["podSelector"], subject.labels)]
    if not selecting:
        return True  # not isolated in this direction
    for policy in selecting:
        for rule in policy["spec"].get(key) or ():
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(peer, other, subject.namespace) for peer in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol, port_owner):
                return True
    return False


def connection_allowed(objects: Iterable[dict], source: Endpoint, target: Endpoint, port: int,
                       protocol: str = "TCP") -> bool:
    """Whether `source` may open `port` on `target`: egress of the source and ingress of the target."""
    policies = of_kind(objects, "NetworkPolicy")
    egress = not source.is_pod or _allowed_one_way(policies, source, target, port, protocol, "Egress", target)
    ingress = not target.is_pod or _allowed_one_way(policies, target, source, port, protocol, "Ingress", target)
    return egress and ingress
