"""Usage records made directly in the database, for tests of the pages and reports that read them, and a
usage writer that keeps its records in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from byok.gateway.usage import UsageEntry, UsageWriter
from byok.models import UsageRecord


class KeptUsage(UsageWriter):
    """A handler's usage records kept in memory, for tests in a rolled-back transaction (`django_db` without
    `transaction=True`). The shared writer's thread writes over a connection of its own, which commits past
    the rollback: on PostgreSQL such records were left behind for the tests after."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[UsageEntry] = []

    def add(self, entry: UsageEntry) -> None:
        self.entries.append(entry)


def usage_record(
    user, name: str, *, key=None, model: str = "gpt-4o-mini", ago: timedelta = timedelta(minutes=5), cost="0.0005"
) -> UsageRecord:
    """One successful request of ``user`` ``ago`` ago: 7 tokens in, 3 out, ``cost`` USD, through ``key`` if given."""
    return UsageRecord.objects.create(
        created_at=datetime.now(UTC) - ago,
        request_id=f"req-{user.username}-{name}",
        user=user,
        provider_name="openai",
        model=model,
        status=UsageRecord.Status.OK,
        tokens_in=7,
        tokens_out=3,
        latency_ms=9.0,
        cost=Decimal(cost),
        gateway_key=key,
    )
