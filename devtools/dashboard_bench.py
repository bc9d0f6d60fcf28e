"""How long the admin dashboard's figures take over many usage records (byok.admin.stats.usage).

    .venv/bin/python -m devtools.dashboard_bench [--records 200000] [--database-url postgres://...]

Seeds a database of its own (a temporary SQLite file unless ``--database-url`` names an empty
PostgreSQL database) with records spread over 30 days and four providers, then times each span
(24 h, 7 d, 30 d) three times and prints the best, with the figures it computed as a check.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import timedelta
from decimal import Decimal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="byok-dashboard-bench-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
    os.environ.setdefault("BYOK_LOCAL_SECRETS", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byok_project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from byok.admin import stats
    from byok.models import UsageRecord

    call_command("migrate", verbosity=0)
    rng, now = random.Random(1), timezone.now()
    providers = ["openai", "anthropic", "gemini", "deepseek"]
    started = time.perf_counter()
    for start in range(0, args.records, 10_000):
        UsageRecord.objects.bulk_create(
            UsageRecord(
                created_at=now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
                request_id=f"bench-{i}",
                provider_name=rng.choice(providers),
                model="m",
                status="error" if rng.random() < 0.03 else "ok",
                tokens_in=rng.randint(10, 4000),
                tokens_out=rng.randint(10, 800),
                latency_ms=rng.lognormvariate(6, 0.5),
                cost=Decimal(rng.randint(1, 10_000)) / 1_000_000,
            )
            for i in range(start, min(start + 10_000, args.records))
        )
    print(f"{args.records:,} records seeded in {time.perf_counter() - started:.1f} s ({os.environ['DATABASE_URL']})")
    for span in stats.SPANS.values():
        best = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            found = stats.usage(span, timezone.now())
            best = min(best, time.perf_counter() - began)
        overall = found.overall
        print(
            f"{span.name:>4}: {best * 1000:8.1f} ms  ({overall.requests:,} requests, p95 {overall.p95_ms:.1f} ms, "
            f"{len(found.buckets)} buckets x {len(found.providers)} providers)"
        )


if __name__ == "__main__":
    main()
