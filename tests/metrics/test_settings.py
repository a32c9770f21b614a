"""The metrics listener settings: a port per service, validated, naming the variable."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.settings import GatewaySettings
from shared.config import ConfigError, DispatcherSettings, Env

BASE = {
    "DATABASE_URL": "postgresql://tocsin@db/tocsin",
    "REDIS_URL": "redis://cache:6379/0",
    "TOCSIN_JWT_SECRET": "x" * 32,
    "TOCSIN_PRODUCER_KEYS": "k" * 16,
}


def gateway(**env: str) -> GatewaySettings:
    return GatewaySettings.from_env(Env({**BASE, **env}))


def dispatcher(**env: str) -> DispatcherSettings:
    return DispatcherSettings.from_env(Env({**BASE, **env}))


def test_unset_or_zero_means_metrics_on_the_service_port() -> None:
    assert gateway().metrics_port == 0
    assert dispatcher(TOCSIN_DISPATCHER_METRICS_PORT="0").metrics_port == 0


def test_the_listener_defaults_to_the_service_host() -> None:
    gw = gateway(TOCSIN_GATEWAY_HOST="0.0.0.0", TOCSIN_GATEWAY_METRICS_PORT="9080")
    assert (gw.metrics_host, gw.metrics_port) == ("0.0.0.0", 9080)
    dp = dispatcher(TOCSIN_DISPATCHER_METRICS_PORT="9081", TOCSIN_METRICS_HOST="10.0.0.7")
    assert (dp.metrics_host, dp.metrics_port) == ("10.0.0.7", 9081)


@pytest.mark.parametrize("value", ["70000", "-1", "ninety", "90.5"])
@pytest.mark.parametrize(
    ("variable", "load"),
    [("TOCSIN_GATEWAY_METRICS_PORT", gateway), ("TOCSIN_DISPATCHER_METRICS_PORT", dispatcher)],
)
def test_a_bad_port_names_the_variable(
    variable: str, load: Callable[..., object], value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**{variable: value})
    assert caught.value.name == variable


def test_the_metrics_port_must_differ_from_the_service_port() -> None:
    with pytest.raises(ConfigError) as caught:
        gateway(TOCSIN_GATEWAY_PORT="9000", TOCSIN_GATEWAY_METRICS_PORT="9000")
    assert caught.value.name == "TOCSIN_GATEWAY_METRICS_PORT"
    with pytest.raises(ConfigError) as caught:
        dispatcher(TOCSIN_DISPATCHER_METRICS_PORT="8081")  # the dispatcher's default port
    assert caught.value.name == "TOCSIN_DISPATCHER_METRICS_PORT"
