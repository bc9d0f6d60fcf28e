"""`GET /metrics`: the Prometheus exposition of `byok.metrics`, plus the key gauges read at scrape time.

Who may scrape: a client on loopback that came straight to byok (no
`X-Forwarded-For`, `X-Real-IP` or `Forwarded` header: a request relayed by a
reverse proxy on the same machine is not the machine itself), or anyone with
`Authorization: Bearer $BYOK_METRICS_TOKEN` (compared in constant time).
Otherwise 401 (no credentials) or 403 (wrong ones), as JSON.

At scrape time, from this process's configuration snapshot, the shared state
(Redis with `REDIS_URL`, so every process sees the same cooldowns) and one
aggregate query:

- `byok_keys{provider, status}`: stored keys by status (active, parked,
  invalid, retired, revoked);
- `byok_keys_cooling_down{provider}`: keys whose own or quota group's
  cooldown runs now;
- `byok_keys_usable{provider}`: keys a request could take now (active, or
  parked past their date, and not cooling down; rate windows aside).

Several workers (`PROMETHEUS_MULTIPROC_DIR` set): the request metrics are
summed over every worker's files (`MultiProcessCollector`), whichever
worker answers the scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections import Counter as Tally
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from byok.gateway.handler import get_handler
from byok.models import ApiKey
from byok.readonly_views import get_only
from byok.state import group_scope, key_scope

__all__ = ["KeyGauges", "metrics_view"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def _loopback(request: HttpRequest) -> bool:
    if any(h in request.META for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _refusal(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read the metrics, else the JSON 401/403 to answer."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if not header:
        if _loopback(request):
            return None
        response = JsonResponse(
            {
                "code": "unauthenticated",
                "message": "Metrics are served to loopback, or with Authorization: Bearer <BYOK_METRICS_TOKEN>.",
            },
            status=401,
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    expected = os.environ.get("BYOK_METRICS_TOKEN", "")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return None
    return JsonResponse({"code": "forbidden", "message": "This token may not read the metrics."}, status=403)


@dataclass(eq=False)  # a collector is registered by identity
class KeyGauges:
    """The key gauges of one scrape (a prometheus_client collector)."""

    stored: Tally = field(default_factory=Tally)  # (provider, status) -> keys
    cooling: Tally = field(default_factory=Tally)  # provider -> keys
    usable: Tally = field(default_factory=Tally)  # provider -> keys
    providers: tuple[str, ...] = ()

    def collect(self):
        stored = GaugeMetricFamily("byok_keys", "Stored provider keys by status.", labels=("provider", "status"))
        for (provider, status), n in sorted(self.stored.items()):
            stored.add_metric((provider, status), n)
        cooling = GaugeMetricFamily(
            "byok_keys_cooling_down", "Keys cooling down now (their own or their quota group's).", labels=("provider",)
        )
        usable = GaugeMetricFamily(
            "byok_keys_usable", "Keys a request could take now (rate windows aside).", labels=("provider",)
        )
        for provider in self.providers:
            cooling.add_metric((provider,), self.cooling[provider])
            usable.add_metric((provider,), self.usable[provider])
        yield from (stored, cooling, usable)


def _stored_keys() -> Tally:
    rows = ApiKey.objects.values_list("provider__name", "status").annotate(n=Count("id"))
    return Tally({(provider, status): n for provider, status, n in rows})


async def key_gauges() -> KeyGauges:
    """Read the key gauges now: the snapshot, the shared state's cooldowns, the stored keys by status."""
    handler = get_handler()
    snapshot = await handler.snapshot()
    state = handler.state()
    now = handler.wall()
    gauges = KeyGauges(stored=await sync_to_async(_stored_keys)(), providers=tuple(snapshot.by_name))
    for provider in snapshot.ordered:
        for key in provider.keys:
            scopes = [key_scope(key.id)] + ([group_scope(key.quota_group)] if key.quota_group else [])
            if await state.cooldown_until(scopes) is not None:
                gauges.cooling[provider.name] += 1
            elif key.usable_at(now):
                gauges.usable[provider.name] += 1
    return gauges


def exposition(keys: KeyGauges) -> bytes:
    """The whole exposition: request metrics (every worker's when multiprocess) and the key gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(keys)
    return body + generate_latest(scraped)


@get_only
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics` (see the module doc)."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    body = exposition(await key_gauges())
    return HttpResponse(body, content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
