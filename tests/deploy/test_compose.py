"""deploy/compose.yaml: the whole stack wired to files that exist, variables Tocsin reads,
and the same addresses and ports as nginx.conf and prometheus.yml."""

from __future__ import annotations

import re
from typing import Any

import yaml

from gateway.settings import GatewaySettings
from shared.config import WorkerSettings
from tests.deploy.settings import (
    DEFAULT_PORTS,
    IMAGE,
    OPTIONAL_SECRETS,
    ports,
    service_settings,
    tocsin_variables,
)
from tests.support.processes import ROOT

DEPLOY = ROOT / "deploy"
GATEWAYS = ["gateway-1", "gateway-2", "gateway-3"]
DISPATCHERS = ["dispatcher-1", "dispatcher-2"]
WORKERS = ["worker"]  # one service, scaled with --scale worker=N
TOCSIN = [*GATEWAYS, *DISPATCHERS, *WORKERS]
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
# What an operator puts in deploy/.env (the file compose reads next to compose.yaml).
DOT_ENV = {
    "POSTGRES_PASSWORD": "password",
    "TOCSIN_JWT_SECRET": "j" * 32,
    "TOCSIN_PRODUCER_KEYS": "tsk_" + "k" * 24,
    "GRAFANA_ADMIN_PASSWORD": "admin-password",
}
# And what an operator may add to it: the fallback's SMTP and VAPID settings.
FULL_DOT_ENV = {
    **DOT_ENV,
    **OPTIONAL_SECRETS,
    "TOCSIN_EMAIL_FROM": "Tocsin <no-reply@example.com>",
    "TOCSIN_PUBLIC_URL": "https://notify.example.com",
}
SECRET_SETTINGS = {"POSTGRES_PASSWORD", "TOCSIN_JWT_SECRET", "TOCSIN_PRODUCER_KEYS"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def interpolate(value: object, dot_env: dict[str, str]) -> str:
    """${X:?message} must come from .env; ${X:-default} falls back; as compose does."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if kind == "-":
            return dot_env.get(name, rest)
        assert kind == "?" and rest.strip(), f"${{{name}}}: say what to set, ${{{name}:?...}}"
        return dot_env[name]

    return INTERPOLATION.sub(one, str(value))


def environment(service: str, dot_env: dict[str, str] = DOT_ENV) -> dict[str, str]:
    raw = services()[service].get("environment", {})
    return {k: interpolate(v, dot_env) for k, v in raw.items()}


def upstreams(name: str) -> list[str]:
    conf = (DEPLOY / "nginx.conf").read_text()
    block = re.search(rf"upstream {name} \{{(.*?)\}}", conf, re.S)
    assert block, name
    return re.findall(r"^\s*server (\S+?)(?:\s|;)", block.group(1), re.M)


def address(service: str) -> str:
    return str(services()[service]["networks"]["tocsin"]["ipv4_address"])


def test_the_whole_stack_is_there_and_starts_in_order() -> None:
    expected = {"postgres", "redis", "migrate", "nginx", "prometheus", "grafana"}
    assert set(services()) == expected | set(TOCSIN)
    for name in TOCSIN:
        depends = services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services()["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in services().items():
        if name != "migrate":
            assert "test" in service["healthcheck"], f"{name} has no healthcheck"


def test_tocsin_services_run_the_image_as_their_role() -> None:
    for name in ["migrate", *TOCSIN]:
        service = services()[name]
        assert service["image"] == IMAGE
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / "deploy" / "Dockerfile").is_file()
        assert service["command"] == [name.split("-")[0]]


def test_every_variable_exists_and_parses_as_the_service_would() -> None:
    known = tocsin_variables()
    nodes = []
    for name in [*TOCSIN, "migrate"]:
        environ = environment(name)
        assert set(environ) <= known, set(environ) - known
        if name == "migrate":
            continue
        role = name.split("-")[0]
        service_settings(role, environment(name, FULL_DOT_ENV))  # with SMTP and VAPID set too
        settings = service_settings(role, environ)
        service_port, metrics_port = ports(settings)
        assert (service_port, metrics_port) == DEFAULT_PORTS[role]
        health_port = service_port or metrics_port  # the worker's listener serves /readyz
        assert f":{health_port}/readyz" in str(services()[name]["healthcheck"]["test"])
        nodes.append(environ.get("TOCSIN_NODE_ID", role))
    # Distinct and named for them; the scaled worker keeps its unique default (leases use it).
    assert sorted(nodes) == sorted(TOCSIN)


def test_gateways_verify_what_the_worker_signs_and_serve_its_push_key() -> None:
    worker = service_settings("worker", environment("worker", FULL_DOT_ENV))
    assert isinstance(worker, WorkerSettings) and worker.email and worker.vapid
    for name in GATEWAYS:
        gateway = service_settings("gateway", environment(name, FULL_DOT_ENV))
        assert isinstance(gateway, GatewaySettings)
        assert gateway.unsubscribe_secret == worker.email.unsubscribe_secret
        assert gateway.vapid_public_key == worker.vapid.public_key
        without = service_settings("gateway", environment(name))  # optional: unset by default
        assert isinstance(without, GatewaySettings)
        assert without.unsubscribe_secret is None and without.vapid_public_key is None


def test_secrets_come_only_from_the_operators_env_file() -> None:
    raw = (DEPLOY / "compose.yaml").read_text()
    for name in SECRET_SETTINGS:
        values = re.findall(rf"^\s*{name}: (.+)$", raw, re.M)
        assert values and all(v.startswith(f"${{{name}:?") for v in values), name
    assert "${GRAFANA_ADMIN_PASSWORD:?" in raw
    for name in OPTIONAL_SECRETS:  # optional, but from .env too, never a value in the file
        values = re.findall(rf"^\s*{name}: (.+)$", raw, re.M)
        assert values and all(v == f"${{{name}:-}}" for v in values), name


def test_nginx_balances_the_compose_gateways_and_dispatchers() -> None:
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services()["nginx"]["volumes"]
    for name, group in (("tocsin_gateways", GATEWAYS), ("tocsin_dispatchers", DISPATCHERS)):
        role = group[0].split("-")[0]
        port = DEFAULT_PORTS[role][0]
        assert upstreams(name) == [f"{address(s)}:{port}" for s in group]
    for name in GATEWAYS:  # the gateways trust X-Forwarded-For from nginx alone
        assert environment(name)["FORWARDED_ALLOW_IPS"] == address("nginx")
    subnet = compose()["networks"]["tocsin"]["ipam"]["config"][0]
    dynamic = subnet["ip_range"].rsplit(".", 1)[1].split("/")[0]
    fixed = [address(s) for s in ["nginx", *GATEWAYS, *DISPATCHERS]]
    assert all(int(ip.rsplit(".", 1)[1]) < int(dynamic) for ip in fixed)  # never handed out


def test_prometheus_scrapes_each_process_on_its_metrics_port() -> None:
    service = services()["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in service["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job, group in (("tocsin-gateway", GATEWAYS), ("tocsin-dispatcher", DISPATCHERS)):
        targets = [t for c in jobs[job]["static_configs"] for t in c["targets"]]
        metrics_port = DEFAULT_PORTS[group[0].split("-")[0]][1]
        assert targets == [f"{name}:{metrics_port}" for name in group]
    # Every replica of the scaled worker: compose's DNS answers one address per container.
    (lookup,) = jobs["tocsin-worker"]["dns_sd_configs"]
    assert lookup == {"names": WORKERS, "type": "A", "port": DEFAULT_PORTS["worker"][1]}
    assert "static_configs" not in jobs["tocsin-worker"]
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()


def test_every_mounted_file_exists() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
