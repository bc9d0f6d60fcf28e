"""byok.gateway.usage: one writer thread, a bounded queue, batches that
survive a bad row, text cleaned before storing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from asgiref.sync import sync_to_async

from byok.gateway import usage as usage_module
from byok.gateway.usage import UsageEntry, UsageWriter, clean_text, now_utc
from byok.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _entry(**kw) -> UsageEntry:
    values = {
        "request_id": uuid.uuid4().hex,
        "created_at": now_utc(),
        "user_id": None,
        "interface": "rest",
        "stream": False,
        "model": "pn/m1",
        "provider_name": "pn",
        "status": "ok",
        "tokens_in": 3,
        "tokens_out": 2,
    }
    return UsageEntry(**{**values, **kw})


async def _rows() -> dict[str, UsageRecord]:
    return await sync_to_async(lambda: {r.request_id: r for r in UsageRecord.objects.all()})()


def test_control_characters_are_removed_and_ordinary_text_kept():
    assert clean_text("pn/m1\x00") == "pn/m1"
    assert clean_text("a\x01b\x1bc\x7fd\x85e") == "abcde"
    assert clean_text("tab\tline\nfeed\r\u00e9\u4e2d\U0001f600") == "tab\tline\nfeed\r\u00e9\u4e2d\U0001f600"


async def test_a_nul_in_one_record_costs_no_record_of_the_batch():
    writer = UsageWriter()
    entries = [_entry() for _ in range(19)]
    bad = _entry(model="pn/m1\x00", error_code="x\x00", failover_path=[{"provider": "pn\x00", "error_class": "a\x00b"}])
    for entry in entries[:10] + [bad] + entries[10:]:
        writer.add(entry)
    await writer.flush()
    rows = await _rows()
    assert set(rows) == {e.request_id for e in entries} | {bad.request_id}
    stored = rows[bad.request_id]
    assert (stored.model, stored.error_code, stored.failover_path) == (
        "pn/m1",
        "x",
        [{"provider": "pn", "error_class": "ab"}],
    )
    assert writer.stats()["failed_rows"] == 0 and writer.written == 20


async def test_when_a_batch_insert_fails_the_other_rows_are_written_one_by_one(caplog, monkeypatch):
    monkeypatch.setattr(usage_module, "clean_text", lambda text: text)  # a NUL now reaches the database as it is
    writer = UsageWriter()
    good = [_entry() for _ in range(9)]
    negative = _entry(failover_path=[{"ms": object()}])  # cannot be stored anywhere (not JSON)
    nul = _entry(model="pn/m1\x00")  # refused by PostgreSQL, stored by SQLite
    with caplog.at_level(logging.ERROR, logger="byok.usage"):
        for entry in good[:4] + [negative, nul] + good[4:]:
            writer.add(entry)
        await writer.flush()
    rows = await _rows()
    assert {e.request_id for e in good} <= set(rows) and negative.request_id not in rows
    assert writer.failed_rows in (1, 2) and writer.written + writer.failed_rows == 11
    assert any(negative.request_id in r.getMessage() for r in caplog.records)


def test_one_writer_thread_for_many_requests_and_none_per_request():
    writer = UsageWriter(interval=0.01)
    before = {t.ident for t in threading.enumerate()}
    for _ in range(50):
        writer.add(_entry())
    assert writer.flush_sync(timeout=10)
    new = [t for t in threading.enumerate() if t.ident not in before]
    assert [t.name for t in new] == ["byok-usage-writer"]
    for _ in range(50):
        writer.add(_entry())
    assert writer.flush_sync(timeout=10)
    assert [t.name for t in threading.enumerate() if t.ident not in before] == ["byok-usage-writer"]
    assert UsageRecord.objects.count() == 100 and writer.written == 100


def test_a_full_queue_drops_and_counts_instead_of_blocking_and_reports_its_high_water_mark(monkeypatch):
    release = threading.Event()
    written: list[int] = []

    def stalled(entries):
        release.wait(10)  # the database does not answer
        written.append(len(entries))
        return 0

    monkeypatch.setattr(usage_module, "_write", stalled)
    writer = UsageWriter(max_queue=5, interval=0, batch=100)
    writer.add(_entry())
    deadline = time.monotonic() + 5
    while writer.stats()["queued"] and time.monotonic() < deadline:  # the writer took it and is stuck writing
        time.sleep(0.01)
    started = time.monotonic()
    for _ in range(8):
        writer.add(_entry())
    assert time.monotonic() - started < 0.5  # add() never waits for the database
    assert writer.stats() == {"queued": 5, "high_water": 5, "dropped": 3, "written": 0, "failed_rows": 0}
    release.set()
    assert writer.flush_sync(timeout=10)
    assert sum(written) == 6 and writer.written == 6
