"""The end of every chat request: its log line and its metrics, from its usage record.

    meter = Meter()
    meter.configure(snapshot, catalog)            # on every configuration load (bounded label values)
    meter.finished(entry, attempts, error)        # Ledger.finish: once per request, every dialect

One line per request on the `byok.request` logger, at INFO:

    chat request_id=… dialect=openai user=3 key=7 provider=openai model=gpt-4o-mini status=200 outcome=ok
         code=- attempts=1 latency_ms=412.3 overhead_ms=0.8

With `BYOK_LOG_FORMAT=json` (`byok.logfmt.JsonFormatter`) the same fields are
the line's JSON keys (they travel in the record's `fields`). Never a secret:
the key is named by its id, the user by theirs.

Metrics go to `byok.metrics.observe_request` with label values bounded by
the configuration: provider names the operator configured, model names the
catalog (or a provider's default model) knows, else `other`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from byok import metrics
from byok.catalog import Catalog
from byok.gateway.config_cache import Snapshot
from byok.gateway.failover import Attempt
from byok.gateway.usage import UsageEntry

__all__ = ["Meter"]

log = logging.getLogger("byok.request")

_KNOWN_MAX = 2048  # (provider, model) answers remembered; clients choose models, so the memo is bounded


class Meter:
    """Logs and counts finished requests with bounded label values (see the module doc)."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._catalog: Catalog | None = None
        self._known: dict[tuple[str, str], bool] = {}

    def configure(self, snapshot: Snapshot, catalog: Catalog) -> None:
        """Take a newly loaded configuration: the providers and models labels may name."""
        self._snapshot, self._catalog, self._known = snapshot, catalog, {}

    def model_known(self, provider_name: str, model: str) -> bool:
        """True when the configuration names `model` for this provider (catalog or default model)."""
        memo = (provider_name, model)
        known = self._known.get(memo)
        if known is None:
            provider = self._snapshot.by_name.get(provider_name) if self._snapshot is not None else None
            known = provider is not None and (
                model == provider.default_model
                or (self._catalog is not None and self._catalog.lookup(provider.kind, model, provider.name) is not None)
            )
            if len(self._known) >= _KNOWN_MAX:
                self._known.clear()
            self._known[memo] = known
        return known

    def finished(self, entry: UsageEntry, attempts: Sequence[Attempt], error: BaseException | None) -> None:
        """Count and log one finished request; never raises (a request must not fail for its metrics)."""
        try:
            self._finished(entry, attempts, error)
        except Exception:
            log.exception("could not count or log request %s", entry.request_id)

    def _finished(self, entry: UsageEntry, attempts: Sequence[Attempt], error: BaseException | None) -> None:
        status = metrics.http_status_of(entry.status, error)
        configured = self._snapshot.by_name if self._snapshot is not None else {}
        metrics.observe_request(
            entry,
            attempts,
            configured=configured,
            model_known=self.model_known(entry.provider_name, entry.model),
            http_status=status,
        )
        if log.isEnabledFor(logging.INFO):
            fields = {
                "request_id": entry.request_id,
                "dialect": entry.interface,
                "user": entry.user_id,
                "key": entry.key_id,
                "provider": entry.provider_name or None,
                "model": entry.model,
                "status": int(status),
                "outcome": entry.status,
                "code": entry.error_code or None,
                "attempts": entry.attempts,
                "latency_ms": round(entry.latency_ms, 1),
                "overhead_ms": round(entry.overhead_ms, 2) if entry.overhead_ms is not None else None,
            }
            log.info(
                "chat %s",
                " ".join(f"{k}={'-' if v is None else v}" for k, v in fields.items()),
                extra={"fields": fields},
            )
