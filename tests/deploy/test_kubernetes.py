"""deploy/k8s: every manifest valid against the Kubernetes schemas (offline, strict), and
every image, port, probe path and variable it names real in Tocsin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from gateway.settings import GatewaySettings
from shared.config import WorkerSettings
from tests.deploy.conftest import Pair
from tests.deploy.settings import (
    DEFAULT_PORTS,
    IMAGE,
    OPTIONAL_SECRETS,
    SECRETS,
    ports,
    service_settings,
    tocsin_variables,
)
from tests.deploy.stack import Service
from tests.support.processes import ROOT

K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30"  # the oldest Kubernetes still supported upstream when this was written


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text())]


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def pod_specs() -> dict[str, dict[str, Any]]:
    """Component label -> pod spec, for every Deployment and Job."""
    return {
        r["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: r["spec"][
            "template"
        ]["spec"]
        for r in resources()
        if r["kind"] in ("Deployment", "Job")
    }


def environment(container: dict[str, Any], optional: bool = False) -> dict[str, str]:
    """The container's environment as the pod would see it, secrets as stand-ins; the
    optional ones (`optional: true`) only when asked for, as if the operator had set them."""
    config = one("ConfigMap", "tocsin-config")["data"]
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "tocsin-config"
        environ.update(config)
    for var in container.get("env", []):
        ref = var.get("valueFrom", {})
        if "secretKeyRef" in ref:
            secret = ref["secretKeyRef"]
            assert secret["name"] == "tocsin"  # created by the operator
            if secret.get("optional", False):
                if optional:
                    environ[var["name"]] = OPTIONAL_SECRETS[secret["key"]]
                continue
            environ[var["name"]] = SECRETS[secret["key"]]
        elif "fieldRef" in ref:
            environ[var["name"]] = "tocsin-gateway-7d9f-abcde"
        else:
            environ[var["name"]] = var["value"]
    return environ


def test_schemas_for_the_chosen_version_are_bundled() -> None:
    assert K8S_VERSION in {
        kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()
    }


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_strictly_offline(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs
    for doc in docs:
        assert "namespace" not in doc["metadata"]  # applied with kubectl -n
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    kinds = {r["kind"] for r in resources()}
    assert {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds
    assert {"PodDisruptionBudget", "Job"} <= kinds
    assert "Secret" not in kinds  # referenced, never shipped with values


def test_every_container_runs_the_image_as_its_role_non_root() -> None:
    specs = pod_specs()
    assert set(specs) == {"gateway", "dispatcher", "migrate", "worker"}
    for role, spec in specs.items():
        (container,) = spec["containers"]
        assert container["image"] == IMAGE and container["args"] == [role]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"requests", "limits"} <= set(container["resources"])


def test_every_variable_exists_and_parses_as_the_service_would() -> None:
    known = tocsin_variables()
    for role, spec in pod_specs().items():
        (container,) = spec["containers"]
        for environ in (environment(container), environment(container, optional=True)):
            assert set(environ) <= known, set(environ) - known
            if role != "migrate":
                service_settings(role, environ)  # raises ConfigError naming a bad variable


def test_gateways_verify_what_the_worker_signs_and_serve_its_push_key() -> None:
    specs = pod_specs()
    worker = service_settings("worker", environment(specs["worker"]["containers"][0], True))
    gateway = service_settings("gateway", environment(specs["gateway"]["containers"][0], True))
    assert isinstance(worker, WorkerSettings) and worker.email and worker.vapid
    assert isinstance(gateway, GatewaySettings)
    assert gateway.unsubscribe_secret == worker.email.unsubscribe_secret
    assert gateway.vapid_public_key == worker.vapid.public_key
    bare = service_settings("worker", environment(specs["worker"]["containers"][0]))
    assert isinstance(bare, WorkerSettings)
    assert (bare.email, bare.vapid) == (None, None)  # starts with the channels off


@pytest.mark.parametrize("role", ["gateway", "dispatcher"])
def test_ports_are_the_ones_the_service_listens_on(role: str) -> None:
    deployment = one("Deployment", f"tocsin-{role}")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    settings = service_settings(role, environment(container))
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (named["http"], named["metrics"]) == ports(settings) == DEFAULT_PORTS[role]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(named["metrics"])
    service = one("Service", f"tocsin-{role}")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http"}  # never metrics
    budget = one("PodDisruptionBudget", f"tocsin-{role}")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    target = one("HorizontalPodAutoscaler", f"tocsin-{role}")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", f"tocsin-{role}")


def test_worker_serves_health_and_metrics_on_one_port_and_has_no_service() -> None:
    pod = one("Deployment", "tocsin-worker")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    settings = service_settings("worker", environment(container))
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (None, named["health"]) == ports(settings) == DEFAULT_PORTS["worker"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(named["health"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "health"
    services = [r for r in resources() if r["kind"] == "Service"]
    assert all(s["spec"]["selector"].items() - pod["metadata"]["labels"].items() for s in services)
    budget = one("PodDisruptionBudget", "tocsin-worker")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # Leases are fenced by the node id: each pod's own name, never one shared value.
    (node,) = [v for v in container["env"] if v["name"] == "TOCSIN_NODE_ID"]
    assert node["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_gateway_pod_outlives_its_drain() -> None:
    spec = one("Deployment", "tocsin-gateway")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    settings = service_settings("gateway", environment(container))
    assert isinstance(settings, GatewaySettings)
    sleep = shlex.join(container["lifecycle"]["preStop"]["exec"]["command"])
    pre_stop = int(re.fullmatch(r"sleep (\d+)", sleep).group(1))  # type: ignore[union-attr]
    # gateway/server.py: uvicorn's graceful shutdown ends 5 s after the drain's grace.
    assert spec["terminationGracePeriodSeconds"] > pre_stop + settings.shutdown_grace + 5


async def test_probe_paths_answer_on_the_running_services(pair: Pair, worker: Service) -> None:
    running = {"gateway": pair.gateway, "dispatcher": pair.dispatcher, "worker": worker}
    async with httpx.AsyncClient(timeout=5) as http:
        for role, service in running.items():
            (container,) = pod_specs()[role]["containers"]
            for probe, healthy in (("livenessProbe", {200}), ("readinessProbe", {200, 503})):
                get = container[probe]["httpGet"]
                # The service port, not the metrics one; the worker has only the one.
                assert get["port"] == ("health" if role == "worker" else "http")
                response = await http.get(service.url + get["path"])
                assert response.status_code in healthy, (role, probe, response.text)
                assert response.json()["service"] == role
