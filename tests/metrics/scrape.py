"""Scrape a Tocsin process's `/metrics` and read it as Prometheus families and samples."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

GATEWAY_FAMILIES = {
    "tocsin_gateway_connections",
    "tocsin_gateway_users",
    "tocsin_gateway_frames_sent_total",
    "tocsin_gateway_acks_total",
    "tocsin_gateway_delivery_latency_seconds",
    "tocsin_gateway_resume_backlog",
    "tocsin_gateway_closes_total",
    "tocsin_gateway_pubsub_channels",
    "tocsin_gateway_store_polling",
    "tocsin_redis_reconnects_total",
    "tocsin_backend_errors_total",
    "tocsin_db_pool_connections",
    "tocsin_db_pool_max_connections",
    "tocsin_db_pool_waiting",
    "tocsin_ready",
}
DISPATCHER_FAMILIES = {
    "tocsin_dispatcher_request_duration_seconds",
    "tocsin_notifications_accepted_total",
    "tocsin_notifications_idempotent_replays_total",
    "tocsin_publish_failures_total",
    "tocsin_dispatcher_rejected_total",
    "tocsin_outbox_republished_total",
    "tocsin_outbox_pending",
    "tocsin_backend_errors_total",
    "tocsin_db_pool_connections",
    "tocsin_db_pool_max_connections",
    "tocsin_db_pool_waiting",
    "tocsin_ready",
}
WORKER_FAMILIES = {
    "tocsin_worker_jobs_total",
    "tocsin_worker_jobs_queued",
    "tocsin_worker_jobs_due",
    "tocsin_worker_send_seconds",
    "tocsin_worker_digests_total",
    "tocsin_worker_push_subscriptions_removed_total",
    "tocsin_backend_errors_total",
    "tocsin_db_pool_connections",
    "tocsin_db_pool_max_connections",
    "tocsin_db_pool_waiting",
    "tocsin_ready",
}


@dataclass(frozen=True)
class Scrape:
    families: dict[str, str]  # exposed family name (counters with _total) -> type
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        """One sample's value; 0 when the series is not exported (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def tocsin(self) -> set[str]:
        return {name for name in self.families if name.startswith("tocsin_")}


def parse(text: str) -> Scrape:
    families: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        # The parser names a counter family without its `_total`; the exposition has it.
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(families, samples)


async def scrape(base_url: str) -> Scrape:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{base_url}/metrics")
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)
