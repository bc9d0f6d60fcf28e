"""Prometheus instruments, and the one call per chat request that feeds them.

    metrics.observe_request(entry, attempts, http_status=200)   # gateway Ledger.finish, every dialect
    metrics.rejected("openai", "invalid_key")                   # a refusal before the handler (auth)
    metrics.usage_queue(writer.stats())                         # the usage writer, after each batch
    metrics.track_websockets(app)                               # ASGI: open websocket connections

Every chat request of every dialect ends in `Ledger.finish (byok.gateway.accounting)` with its
usage record filled in, so that is where a request is counted: requests by
dialect / provider / model / status / outcome, latency, time to first token
and byok's own overhead (histograms), tokens and cost (counters), upstream
attempts, retries and failovers, and rejections (budget, rate limit, context).
The gauges that describe the configuration (usable, cooling down, parked,
invalid keys per provider) are read when Prometheus scrapes, by
`byok.exporter`, from the snapshot and the shared state.

Label values are bounded: `bounded_provider` / `bounded_model` let through
only what the operator configured (provider names, the catalog's model names,
a provider's default model) and give `other` for anything else a client sent;
no user ids, no key ids. The exposition is served by `byok.exporter`.

Several processes: when `PROMETHEUS_MULTIPROC_DIR` is set (`byok_project.serve`
sets it for `BYOK_WORKERS` > 1), prometheus_client keeps every value in a
memory-mapped file per process and the exporter adds them up at scrape time;
gauges of live values sum over the live processes.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ATTEMPT_CLASSES",
    "OTHER",
    "REJECTIONS",
    "bounded_model",
    "bounded_provider",
    "dialect_of",
    "http_status_of",
    "observe_request",
    "rejected",
    "track_websockets",
    "usage_queue",
]

OTHER = "other"
NONE = "none"  # no provider was chosen (refused before routing, unknown provider)

# Error codes that are byok refusing a request (not a provider failing it): counted as rejections.
REJECTIONS = frozenset(
    {
        "budget_exceeded",
        "rate_limited",
        "context_length_exceeded",
        "model_not_allowed",
        "invalid_key",
        "key_revoked",
        "key_expired",
        "payload_too_large",
        "too_many_requests",
    }
)
# The dialect label of a refusal made before the handler (by path; the handler's own come from `interface`).
DIALECT_PATHS = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
    "/v1/responses": "responses",
    "/api/chat": "rest",
}
# What an upstream attempt can end as (the adapters' error classes), else `other`.
ATTEMPT_CLASSES = frozenset(
    {
        "ok",
        "auth",
        "quota",
        "rate_limit",
        "overloaded",
        "server",
        "timeout",
        "connection",
        "malformed",
        "bad_request",
        "not_found",
        "blocked",
        "key_unreadable",
    }
)
# Upstream latencies: from a few ms (a cached answer) to the 300 s request deadline.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# byok's own time: well under a millisecond to a few when it is busy.
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

REQUESTS = Counter(
    "byok_requests",
    "Chat requests by dialect, provider, model, HTTP status and outcome (ok, error, cancelled).",
    ("dialect", "provider", "model", "status", "outcome"),
)
LATENCY = Histogram(
    "byok_request_duration_seconds",
    "Time from a chat request's arrival in the handler to its end (streams: to the last event).",
    ("dialect", "provider"),
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "byok_time_to_first_token_seconds",
    "Time to the first token of an answer (streams and complete answers).",
    ("dialect", "provider"),
    buckets=LATENCY_BUCKETS,
)
OVERHEAD = Histogram(
    "byok_overhead_seconds",
    "Time a chat request spent in byok itself, upstream attempts and backoff waits excluded (x-byok-overhead-ms).",
    ("dialect",),
    buckets=OVERHEAD_BUCKETS,
)
TOKENS = Counter(
    "byok_tokens",
    "Tokens by provider, model and direction (in: prompt, out: completion).",
    ("provider", "model", "direction"),
)
COST = Counter(
    "byok_cost_usd", "Cost of answers in USD (catalog prices; unknown prices add nothing).", ("provider", "model")
)
ATTEMPTS = Counter(
    "byok_upstream_attempts",
    "Upstream attempts by provider and result (ok or the error class).",
    ("provider", "result"),
)
RETRIES = Counter("byok_upstream_retries", "Attempts after the first one at the same provider.", ("provider",))
FAILOVERS = Counter("byok_failovers", "A request moved on from this provider to another one.", ("provider",))
REJECTED = Counter(
    "byok_rejections",
    "Requests byok refused itself: budgets, rate limits, context length, gateway key checks.",
    ("dialect", "reason"),
)
WEBSOCKETS = Gauge("byok_websocket_connections", "Websocket connections open now.", multiprocess_mode="livesum")
QUEUE_DEPTH = Gauge(
    "byok_usage_queue_depth", "Usage records waiting to be written to the database.", multiprocess_mode="livesum"
)
QUEUE_DROPPED = Gauge(
    "byok_usage_dropped_records",
    "Usage records dropped because the writer's queue was full (since the process started).",
    multiprocess_mode="livesum",
)


class _Entry(Protocol):
    """What `observe_request` reads of a usage record (`byok.gateway.usage.UsageEntry`)."""

    interface: str
    provider_name: str
    model: str
    status: str
    error_code: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    ttft_ms: float | None
    overhead_ms: float | None
    cost: Any


class _Attempt(Protocol):
    provider: str
    error_class: str | None


def bounded_provider(name: str, configured: Container[str]) -> str:
    """`name` if it is a configured provider's, `none` when empty, else `other`."""
    if not name:
        return NONE
    return name if name in configured else OTHER


def bounded_model(model: str, known: bool) -> str:
    """`model` when the operator's configuration knows it (`known`), else `other`."""
    return model if model and known else OTHER


def http_status_of(status: str, error: BaseException | None) -> str:
    """The HTTP status a request ended with: 200, the error's status, 499 when the client went away."""
    if status == "ok":
        return "200"
    if status == "cancelled":
        return "499"
    code = getattr(error, "status_code", None)
    return str(code) if isinstance(code, int) else "500"


def observe_request(
    entry: _Entry,
    attempts: Sequence[_Attempt],
    *,
    configured: Container[str],
    model_known: bool,
    http_status: str,
) -> None:
    """Count one finished chat request.

    `configured`: the configured provider names (label values allowed as they are); `model_known`:
    whether the configuration knows the entry's model (else it is counted as `other`).
    """
    dialect = entry.interface
    provider = bounded_provider(entry.provider_name, configured)
    model = bounded_model(entry.model, model_known)
    REQUESTS.labels(dialect, provider, model, http_status, entry.status).inc()
    LATENCY.labels(dialect, provider).observe(entry.latency_ms / 1000)
    if entry.ttft_ms is not None:
        TTFT.labels(dialect, provider).observe(entry.ttft_ms / 1000)
    if entry.overhead_ms is not None:
        OVERHEAD.labels(dialect).observe(entry.overhead_ms / 1000)
    if entry.tokens_in:
        TOKENS.labels(provider, model, "in").inc(entry.tokens_in)
    if entry.tokens_out:
        TOKENS.labels(provider, model, "out").inc(entry.tokens_out)
    if entry.cost:
        COST.labels(provider, model).inc(float(entry.cost))
    if entry.error_code in REJECTIONS:
        REJECTED.labels(dialect, entry.error_code).inc()
    previous = None
    for attempt in attempts:
        name = bounded_provider(attempt.provider, configured)
        result = attempt.error_class or "ok"
        ATTEMPTS.labels(name, result if result in ATTEMPT_CLASSES else OTHER).inc()
        if previous is not None:
            if attempt.provider == previous:
                RETRIES.labels(name).inc()
            else:
                FAILOVERS.labels(bounded_provider(previous, configured)).inc()
        previous = attempt.provider


def dialect_of(path: str) -> str:
    """The dialect label of a chat path (`other` for any other path)."""
    return DIALECT_PATHS.get(path, OTHER)


def rejected(dialect: str, reason: str) -> None:
    """Count a refusal that never reached the handler (a gateway key's checks, for instance)."""
    REJECTED.labels(dialect, reason if reason in REJECTIONS else OTHER).inc()


def usage_queue(stats: Mapping[str, int]) -> None:
    """The usage writer's queue depth and drops (its `stats()`), after each batch and each drop."""
    QUEUE_DEPTH.set(stats["queued"])
    QUEUE_DROPPED.set(stats["dropped"])


def track_websockets(app):
    """ASGI middleware: `byok_websocket_connections` goes up when a socket is accepted, down when it ends."""

    async def counted(scope, receive, send):
        accepted = False

        async def sending(message):
            nonlocal accepted
            if not accepted and message.get("type") == "websocket.accept":
                accepted = True
                WEBSOCKETS.inc()
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            if accepted:
                WEBSOCKETS.dec()

    return counted
