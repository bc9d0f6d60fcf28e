"""The admin's dashboard and frame: staff only, byok's name, the right figures for seeded usage, the keys not serving.

The browser side (charts drawn, no overflow at 1280 px, screenshots) is
byok/tests/test_admin_browser.py.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

import byok
from byok import registry
from byok.models import ApiKey, UsageRecord
from byok.state import get_state_backend, key_scope

pytestmark = pytest.mark.django_db
_ids = count()


def record(minutes_ago: float, provider: str, *, latency: float, status: str = "ok", **fields) -> UsageRecord:
    return UsageRecord.objects.create(
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        request_id=f"dash-{next(_ids)}",
        provider_name=provider,
        model="m",
        status=status,
        latency_ms=latency,
        **fields,
    )


def text(html: str) -> str:
    """The page's text with tags and runs of whitespace collapsed, for asserting what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_anonymous_and_non_staff_users_are_sent_to_the_login(client, bob):
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    client.force_login(bob)
    answer = client.get("/admin/")
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
    record(5, "openai", latency=10.0)
    assert b"byok-chart" not in client.get("/admin/?span=7d").content


def test_the_header_and_title_name_byok_and_link_chat_and_the_docs(admin_browser):
    page = admin_browser.get("/admin/").content.decode()
    assert f"byok {byok.__version__}" in page and "Django administration" not in page
    assert re.search(r"<title>Dashboard \| byok admin</title>", page)
    assert 'href="/chat/"' in page and 'href="/api/docs"' in page
    assert 'rel="icon" href="/static/byok/favicon.svg"' in page and "byok/admin.css" in page
    assert "byok" in admin_browser.get("/admin/byok/usagerecord/").content.decode().split("</title>")[0]


def test_the_favicon_is_served_from_the_static_files(client):
    from django.contrib.staticfiles import finders

    answer = client.get("/favicon.ico")
    assert answer.status_code == 302 and answer["Location"] == "/static/byok/favicon.svg"
    assert finders.find("byok/favicon.svg") and "<svg" in open(finders.find("byok/favicon.svg")).read()


def test_the_dashboard_shows_the_seeded_figures(admin_browser):
    record(5, "openai", latency=100.0, tokens_in=1000, tokens_out=200, cost=Decimal("0.0100"))
    record(15, "openai", latency=300.0, tokens_in=500, tokens_out=50, cost=Decimal("0.0050"))
    record(25, "openai", latency=950.0, status="error", error_code="upstream_error")
    record(35, "anthropic", latency=22.357187000125123, tokens_in=10, tokens_out=5)
    record(60 * 48, "openai", latency=7000.0, tokens_in=1_000_000, cost=Decimal("2.5"))  # two days ago
    page = admin_browser.get("/admin/").content.decode()
    seen = text(page)
    assert "Requests 4 " in seen and "Errors 1 (25.0%)" in seen and "p95 latency 300.0 ms" in seen
    assert "Tokens 1,765 " in seen and "Spend $0.0150" in seen
    # By provider: openai 3 requests, 1 error, p95 of its successes, its tokens and spend; anthropic unpriced.
    assert "openai 3 1 (33.3%) 300.0 ms 1,500 250 $0.0150 1" in seen
    assert "anthropic 1 0 (0.0%) 22.4 ms 10 5 — 1" in seen  # no priced request: no spend figure
    assert page.count('class="byok-chart"') == 5 and page.count("<polyline") >= 4
    assert 'aria-current="page">last 24 hours' in page
    week = text(admin_browser.get("/admin/?span=7d").content.decode())
    assert "Requests 5 " in week and "Spend $2.52" in week and "Tokens 1,001,765 " in week
    assert "p95 latency 7,000.0 ms" in week  # nearest rank of 4 successes: the 4th
    assert "Requests 5 " in text(admin_browser.get("/admin/?span=30d").content.decode())


def test_an_unknown_span_is_the_last_24_hours(admin_browser):
    record(60 * 30, "openai", latency=1.0)
    seen = text(admin_browser.get("/admin/?span=forever").content.decode())
    assert "Requests 0 " in seen and "No requests last 24 hours" in seen and "No requests in this period" in seen


def test_staff_without_the_usage_permission_see_no_figures(client, django_user_model):
    carol = django_user_model.objects.create_user("carol", password="carol-pass-123", is_staff=True)
    carol.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(carol)
    record(5, "openai", latency=10.0)
    page = client.get("/admin/").content.decode()
    assert "byok-chart" not in page and "need the permission to view usage records" in page
    assert "Keys not serving now" in page


def test_the_keys_panel_lists_cooling_parked_and_invalid_keys(admin_browser):
    provider = registry.register_provider(kind="openai", name="oa", api_key="sk-dash-aaaa-0123456789")
    cooling = provider.keys.get()
    parked = registry.add_key(provider.pk, "sk-dash-bbbb-0123456789")
    invalid = registry.add_key(provider.pk, "sk-dash-cccc-0123456789")
    assert "Every active key is serving." in admin_browser.get("/admin/").content.decode()
    ApiKey.objects.filter(pk=parked.pk).update(
        status=ApiKey.Status.PARKED, parked_until=timezone.now() + timedelta(hours=1), last_error="insufficient_quota"
    )
    ApiKey.objects.filter(pk=invalid.pk).update(status=ApiKey.Status.INVALID, last_error="401 invalid api key")

    async def cooldown(scope: str, until: float | None) -> None:
        state = get_state_backend(settings.REDIS_URL, prefix=settings.BYOK["STATE_PREFIX"])
        try:
            await (state.cooldown(scope, until) if until else state.clear_cooldown(scope))
        finally:
            await state.close()

    async_to_sync(cooldown)(key_scope(cooling.pk), time.time() + 60)
    try:
        page = admin_browser.get("/admin/").content.decode()
    finally:  # the in-process state outlives the test: a later test's key may reuse this id
        async_to_sync(cooldown)(key_scope(cooling.pk), None)
    seen = text(page)
    assert f"oa:{cooling.hint} cooling down" in seen and "this key" in seen
    assert f"oa:{parked.hint} parked" in seen and "insufficient_quota" in seen
    assert f"oa:{invalid.hint} invalid an admin re-enables it 401 invalid api key" in seen
    assert seen.index("cooling down") < seen.index(" parked ") < seen.index(" invalid ")  # soonest back first


def test_the_keys_panel_says_when_the_shared_state_is_down(admin_browser, monkeypatch):
    from byok.admin import keystate

    registry.register_provider(kind="openai", name="oa", api_key="sk-dash-aaaa-0123456789")

    def down(keys):
        raise ConnectionError("no redis")

    monkeypatch.setattr(keystate, "cooldowns", down)
    answer = admin_browser.get("/admin/")
    assert answer.status_code == 200 and "shared state is unavailable (ConnectionError)" in answer.content.decode()


def test_the_usage_list_and_record_read_in_human_numbers(admin_browser):
    row = record(5, "openai", latency=22.357187000125123, tokens_in=1234, tokens_out=56, cost=Decimal("0.01234"))
    row.ttft_ms, row.overhead_ms = 3.14159, 0.25
    row.save()
    listing = text(admin_browser.get("/admin/byok/usagerecord/").content.decode())
    assert "22.4 ms" in listing and "$0.0123" in listing and "1,234 → 56" in listing
    assert "22.357" not in listing and "key hint" not in listing.lower()
    detail = text(admin_browser.get(f"/admin/byok/usagerecord/{row.pk}/change/").content.decode())
    assert "22.4 ms" in detail and "3.1 ms" in detail and "0.2 ms" in detail and "$0.0123" in detail
    assert "22.357" not in detail and row.request_id in detail


def test_the_api_docs_link_back_to_the_admin_and_the_chat_page(client):
    page = client.get("/api/docs").content.decode()
    nav = page.split('<nav aria-label="byok"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/admin/"' in nav and 'href="/chat/"' in nav
    assert 'id="swagger-ui"' in page  # drf-spectacular's page is still all there


def test_the_key_list_reads_limits_and_times_in_human_terms(admin_browser):
    provider = registry.register_provider(kind="openai", name="oa", api_key="sk-dash-aaaa-0123456789")
    limited = registry.add_key(
        provider.pk, "sk-dash-bbbb-0123456789", rpm=60, tpm=100000, token_quota=5000000, quota_window="day"
    )
    ApiKey.objects.filter(pk=limited.pk).update(last_used_at=timezone.now())
    seen = text(admin_browser.get("/admin/byok/apikey/").content.decode())
    assert f"oa:{limited.hint}" in seen and "60 rpm · 100,000 tpm · 5,000,000 per day" in seen
    assert "none" in seen and "—" in seen  # the first key: no limits, never used
