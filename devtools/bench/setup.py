"""The providers every bench phase uses, pointed at the fake provider.

`bench` answers with the fake's default 8 chunks (non-streaming figures);
`bench100` streams 100 chunks per answer as fast as it can (throughput);
`bench100p` streams 100 chunks 1 ms apart, as a model does, so that each chunk
crosses the gateway on its own (time to first token, per-chunk cost);
`bench1` answers one chunk (with `bench100p`, the per-chunk cost's two ends);
`bench20` and `bench20p` are the same with 20 chunks, the answers the HTTP phases send (issue 13's
20-chunk streams);
`benchws` paces its chunks for the websocket phase. They are registered through byok's audited registry, in
process or in a server's database with `python manage.py shell -c` (see
`devtools.bench.servers.register_providers`).
"""

from __future__ import annotations

__all__ = [
    "BENCH_KEY",
    "HTTP_CHUNKS",
    "MODEL",
    "PACED_DELAY_MS",
    "STREAM_CHUNKS",
    "provider_urls",
    "register_bench_providers",
]

BENCH_KEY = "sk-bench-0123456789abcdef01234567"
MODEL = "gpt-4o-mini"
STREAM_CHUNKS = 100  # in process
HTTP_CHUNKS = 20  # over HTTP
PACED_DELAY_MS = 1


def provider_urls(fake_url: str, *, ws_chunks: int = 50, ws_delay_ms: int = 100) -> dict[str, str]:
    """Base URLs (OpenAI wire format) of the bench providers at the fake provider."""
    return {
        "bench": f"{fake_url}/v1",
        "bench100": f"{fake_url}/cfg/chunks={STREAM_CHUNKS}/v1",
        "bench100p": f"{fake_url}/cfg/chunks={STREAM_CHUNKS};delay_ms={PACED_DELAY_MS}/v1",
        "bench1": f"{fake_url}/cfg/chunks=1/v1",
        "bench20": f"{fake_url}/cfg/chunks={HTTP_CHUNKS}/v1",
        "bench20p": f"{fake_url}/cfg/chunks={HTTP_CHUNKS};delay_ms={PACED_DELAY_MS}/v1",
        "benchws": f"{fake_url}/cfg/chunks={ws_chunks};delay_ms={ws_delay_ms}/v1",
    }


def register_bench_providers(fake_url: str, **ws: int) -> None:
    """Register the bench providers (idempotent: existing ones are left alone). Needs Django set up."""
    from byok import registry
    from byok.models import Provider

    for name, base_url in provider_urls(fake_url, **ws).items():
        if not Provider.objects.filter(name=name).exists():
            registry.register_provider(
                kind="openai", name=name, base_url=base_url, default_model=MODEL, max_retries=0, api_key=BENCH_KEY
            )
