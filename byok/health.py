"""`GET /healthz` (the process answers) and `GET /readyz` (it can serve chats).

Neither needs authentication, so neither says more than a load balancer
needs: each check is `{"ok": bool}` plus a short `reason` when it fails,
never a host, a port, an exception message or a secret (those go to the log).
`/readyz` answers 503 when any check fails:

- `database`: a `SELECT 1` answers;
- `redis` (only when `REDIS_URL` is set): a PING answers;
- `config`: the providers-and-keys snapshot is loaded (loading it if needed);
- `master_key`: every stored key that could be used decrypts with this
  process's master key (a process left on an old key after a rotation fails
  here instead of failing chats).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from byok.crypto import undecryptable
from byok.gateway.handler import get_handler
from byok.readonly_views import get_only

__all__ = ["healthz", "readyz"]

log = logging.getLogger("byok.health")
CHECK_TIMEOUT_S = 3.0
NO_STORE = {"Cache-Control": "no-store"}


class NotReady(Exception):
    """A check failed; `reason` is safe to show to anyone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _database() -> None:
    await sync_to_async(_select_one, thread_sensitive=True)()


async def _redis() -> None:
    await get_handler().state().ping()


def undecryptable_keys(snapshot) -> int:
    """How many stored, not revoked keys of the snapshot this process's master keys cannot decrypt."""
    return undecryptable(key.sealed for provider in snapshot.ordered for key in provider.keys)


async def _run(name: str, check: Callable[[], Awaitable[None]], reason: str) -> dict:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except NotReady as exc:
        log.warning("readiness: %s: %s", name, exc.reason)
        return {"ok": False, "reason": exc.reason}
    except TimeoutError:
        log.warning("readiness: %s did not answer within %.0f s", name, CHECK_TIMEOUT_S)
        return {"ok": False, "reason": f"{reason} (no answer within {CHECK_TIMEOUT_S:.0f} s)"}
    except Exception as exc:
        log.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, exc)
        return {"ok": False, "reason": reason}
    return {"ok": True}


@get_only
async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and its event loop answers."""
    return JsonResponse({"status": "ok"}, headers=NO_STORE)


@get_only
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve chats: every check passes (200), else 503 with a reason per failed check."""
    checks = {"database": await _run("database", _database, "the database does not answer")}
    if settings.REDIS_URL:
        checks["redis"] = await _run("redis", _redis, "Redis does not answer")
    snapshot = None

    async def config() -> None:
        nonlocal snapshot
        snapshot = await get_handler().snapshot()

    checks["config"] = await _run("config", config, "the provider configuration cannot be loaded")

    async def master_key() -> None:
        if snapshot is None:
            raise NotReady("not checked: the provider configuration is not loaded")
        failed = undecryptable_keys(snapshot)
        if failed:
            raise NotReady(f"{failed} stored key(s) cannot be decrypted with this process's master key")

    checks["master_key"] = await _run("master_key", master_key, "the stored keys cannot be checked")
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503, headers=NO_STORE)
