"""The admin in a real browser: the dashboard's charts drawn, list pages that fit 1280 px, the favicon, screenshots.

Debian's Chromium (headless, through Playwright) against daphne serving a
database seeded with eight days of usage over four providers and a parked and
an invalid key. At 1280 px every list page (usage, keys, providers, audit
events) must fit without sideways scrolling, the page's or its table's; at
390 px the dashboard must too. Screenshots of the dashboard and the usage list
at both widths are saved under ``artifacts/screenshots/`` (git-ignored) and
their paths printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from byok.tests.live import ROOT, drop_live_env, launch_chromium, live_env, log_in, manage, start_daphne

SHOTS = ROOT / "artifacts" / "screenshots"

SEED = """
import os
import random
from datetime import timedelta
from decimal import Decimal
from django.contrib.auth import get_user_model
from django.utils import timezone
from byok import registry
from byok.models import ApiKey, Provider, UsageRecord

rng = random.Random(5)
now = timezone.now()
admin = get_user_model().objects.get(username=os.environ["BYOK_ADMIN_USER"])
profiles = {
    "openai-main": ("openai", 420, 0.02, "gpt-4o-mini-2024-07-18", (0.15, 0.6)),
    "anthropic": ("anthropic", 950, 0.04, "claude-3-5-haiku-20241022", (0.8, 4.0)),
    "gemini": ("gemini", 260, 0.01, "gemini-2.0-flash", None),
    "deepseek": ("deepseek", 1300, 0.12, "deepseek-chat", (0.27, 1.1)),
}
for name, (kind, *_rest) in profiles.items():
    registry.register_provider(kind=kind, name=name, default_model="m", api_key=f"sk-{name}-seed-0123456789abcdef")

ds = Provider.objects.get(name="deepseek")
parked = registry.add_key(ds.pk, "sk-deepseek-parked-0123456789")
ApiKey.objects.filter(pk=parked.pk).update(
    status="parked", parked_until=now + timedelta(hours=2), last_error="402 Insufficient Balance"
)
invalid = registry.add_key(ds.pk, "sk-deepseek-invalid-0123456789")
ApiKey.objects.filter(pk=invalid.pk).update(status="invalid", last_error="401 Authentication Fails (invalid key)")
rows = []
for i in range(1500):
    name = rng.choices(list(profiles), weights=[5, 3, 2, 1])[0]
    kind, base, error_rate, model, price = profiles[name]
    failed = rng.random() < error_rate
    t_in, t_out = (0, 0) if failed else (rng.randint(50, 4000), rng.randint(10, 800))
    cost = None if price is None or failed else Decimal(t_in * price[0] + t_out * price[1]) / 1_000_000
    latency = rng.lognormvariate(0, 0.45) * base
    rows.append(UsageRecord(
        created_at=now - timedelta(minutes=rng.uniform(0, 60 * 24 * 8)), request_id=f"seed-{i:05d}", user=admin,
        provider_name=name, model=model, key_hint="sk-…" + name[:4], interface="openai", stream=i % 2 == 0,
        status="error" if failed else "ok", error_code="upstream_error" if failed else "", attempts=1 + failed,
        tokens_in=t_in, tokens_out=t_out, latency_ms=latency, ttft_ms=latency * 0.3, overhead_ms=rng.uniform(0.2, 2.0),
        cost=cost.quantize(Decimal("0.00000001")) if cost is not None else None,
    ))
UsageRecord.objects.bulk_create(rows)
"""

LIST_PAGES = ["/admin/byok/usagerecord/", "/admin/byok/apikey/", "/admin/byok/provider/", "/admin/byok/auditevent/"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admin-browser")
    env = live_env(tmp)
    manage(env, "shell", "-c", SEED)
    call_command("collectstatic", "--noinput", verbosity=0)  # ServeStatic (DEBUG off) serves from STATIC_ROOT
    server = start_daphne(env, tmp)
    yield server
    server.stop()
    drop_live_env(env)


def overflow(page) -> dict[str, int]:
    """How many pixels the page, and the change list's table box, would scroll sideways (0: it fits)."""
    return page.evaluate(
        """() => {
            const doc = document.documentElement;
            const box = document.querySelector('#changelist .results');
            return {page: doc.scrollWidth - doc.clientWidth, table: box ? box.scrollWidth - box.clientWidth : 0};
        }"""
    )


@pytest.mark.browser
def test_the_dashboard_and_list_pages_in_chromium(site):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            missing: list[str] = []
            page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)

            log_in(page, site.url, "/admin/")
            assert page.title() == "Dashboard | byok admin"
            expect(page.locator("#site-name")).to_contain_text("byok 0.1.0")

            # The 7-day view: five charts, each drawn with a line per provider, at a readable size.
            page.goto(site.url + "/admin/?span=7d")
            charts = page.locator("svg.byok-chart")
            expect(charts).to_have_count(5)
            for i in range(5):
                chart = charts.nth(i)
                assert chart.locator("polyline").count() >= 1, f"chart {i} drew no line"
                box = chart.bounding_box()
                assert box and box["width"] >= 300 and box["height"] >= 100, box
            stroke = page.evaluate(
                "getComputedStyle(document.querySelector('svg.byok-chart polyline.series-0')).stroke"
            )
            assert stroke not in ("none", "rgb(0, 0, 0)"), stroke  # the stylesheet coloured the lines
            expect(page.locator("#byok-keys")).to_contain_text("parked")
            expect(page.locator("#byok-keys")).to_contain_text("invalid")
            assert overflow(page)["page"] <= 0
            shots.append(SHOTS / "admin-dashboard-1280.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            page.emulate_media(color_scheme="dark")  # the admin's dark theme: the charts follow its colours
            page.reload()
            axis_colour = page.evaluate("getComputedStyle(document.querySelector('svg.byok-chart text.axis')).fill")
            assert axis_colour != "rgb(0, 0, 0)", axis_colour
            shots.append(SHOTS / "admin-dashboard-1280-dark.png")
            page.screenshot(path=str(shots[-1]))
            page.emulate_media(color_scheme="light")

            too_wide = {}
            for path in LIST_PAGES:
                page.goto(site.url + path)
                expect(page.locator("#result_list")).to_be_visible()
                shots.append(SHOTS / f"admin-{path.strip('/').split('/')[-1]}-list-1280.png")
                page.screenshot(path=str(shots[-1]))
                if overflow(page) != {"page": 0, "table": 0}:
                    too_wide[path] = overflow(page)
            assert not too_wide, f"list pages wider than 1280 px: {too_wide}"
            page.goto(site.url + LIST_PAGES[0])
            expect(page.locator("#result_list")).to_contain_text(" ms")
            expect(page.locator("#result_list")).to_contain_text("$0.")

            # The favicon answers, at the root and from the static files; the header links lead somewhere.
            for url in ("/favicon.ico", "/static/byok/favicon.svg", "/static/byok/admin.css"):
                answer = page.request.get(site.url + url)
                assert answer.status == 200, (url, answer.status)
            assert page.request.get(site.url + "/favicon.ico").headers["content-type"].startswith("image/svg")
            for link in ("Chat", "API docs"):
                href = page.locator("#user-tools a", has_text=link).get_attribute("href")
                assert page.request.get(site.url + href).status == 200, link

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(site.url + "/admin/?span=24h")
            expect(page.locator("svg.byok-chart")).to_have_count(5)
            assert overflow(page)["page"] <= 0, "the dashboard scrolls sideways on a phone"
            assert page.locator("svg.byok-chart").first.bounding_box()["width"] <= 390
            shots.append(SHOTS / "admin-dashboard-390.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            page.goto(site.url + LIST_PAGES[0])
            shots.append(SHOTS / "admin-usage-list-390.png")
            page.screenshot(path=str(shots[-1]))
            assert not errors, errors
            assert not missing, missing
        finally:
            browser.close()
    for shot in shots:
        assert shot.stat().st_size > 10_000
        print(f"admin screenshot: {shot.resolve()}")
