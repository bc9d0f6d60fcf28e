"""The handler's configuration snapshot: a reload that read the rows before a change is never kept after it."""

from __future__ import annotations

import asyncio
import threading

from byok.budgets import Book
from byok.catalog import Catalog, file_entries
from byok.gateway import config_cache
from byok.gateway.config_cache import Snapshot
from byok.gateway.handler import BYOKHandler
from byok.state import MemoryStateBackend, MemoryStore


def _snapshot() -> Snapshot:
    return Snapshot(by_id={}, by_name={}, ordered=(), policies=())


async def test_a_reload_racing_an_announced_change_is_not_installed(monkeypatch):
    clock = [0.0]
    store = MemoryStore()
    handler = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), clock=lambda: clock[0])
    book = Book(Catalog(file_entries()))
    before, after = _snapshot(), _snapshot()
    release, loading = threading.Event(), threading.Event()
    loads: list[Snapshot] = []

    def load():
        if not loads:  # the first load reads the rows as they were before the revoke...
            loads.append(before)
            loading.set()
            release.wait(10)  # ...and finishes only after the revoke was announced
            return before, book
        loads.append(after)
        return after, book

    monkeypatch.setattr(config_cache, "load_config", load)
    first = asyncio.create_task(handler.snapshot())
    await asyncio.to_thread(loading.wait, 10)
    # Another process revokes a key and bumps the shared version; this process's watcher sees it.
    await handler.state().bump_version()
    clock[0] += 1.0
    second = asyncio.create_task(handler.snapshot())
    await asyncio.sleep(0.05)
    release.set()
    assert await first is before  # the request that started the stale load may use it once
    assert await second is after  # but it is not kept: the next request reloads
    assert await handler.snapshot() is after and loads == [before, after]
