"""The chat page: the view with Django's test client, then a real browser against a real server.

The browser test drives Debian's Chromium (`/usr/bin/chromium`, headless)
with Playwright against daphne and the fake provider: it logs in, sends a
message and watches the answer grow token by token, cancels a second answer
(the fake provider records the upstream request as cancelled), and saves
screenshots at desktop and phone width under `artifacts/`. Without Chromium
it is skipped, and fails in CI (which installs it: `apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from byok import registry
from byok.tests.live import (
    ROOT,
    drop_live_env,
    launch_chromium,
    live_env,
    log_in,
    manage,
    start_daphne,
    start_fake_provider,
)

ARTIFACTS = ROOT / "artifacts"


# -- the view -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_chat_page_needs_a_login(client):
    answer = client.get("/chat/")
    assert answer.status_code == 302 and answer["Location"] == "/login/?next=/chat/"


@pytest.mark.django_db
def test_the_chat_page_lists_the_enabled_providers(client, bob):
    registry.register_provider(
        kind="openai", name="main", api_key="sk-main-0123456789abcdef", default_model="gpt-4o", is_default=True
    )
    registry.register_provider(kind="anthropic", name="keyless", default_model="claude-x")
    registry.register_provider(kind="gemini", name="off", api_key="AIza-0123456789abcdef", enabled=False)
    client.force_login(bob)  # any user may chat; only staff see the admin link
    page = client.get("/chat/").content.decode()
    assert 'value="main" data-model="gpt-4o"' in page and "(default)" in page
    assert 'value="keyless" data-model="claude-x" data-unusable="1"' in page and "no active key" in page
    assert 'value="off"' not in page
    assert "byok/chat.js" in page and "byok/chat.css" in page and 'data-ws-path="/ws/chat/"' in page
    assert "/admin/" not in page.split("</header>")[0].replace("/admin/logout/", "")


@pytest.mark.django_db
def test_the_chat_page_says_when_nothing_is_configured(admin_browser):
    page = admin_browser.get("/chat/").content.decode()
    assert "No provider is configured yet" in page and 'href="/admin/"' in page


# -- a real browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    env["BYOK_STATE_PREFIX"] = f"byok-browser-{uuid.uuid4().hex[:8]}:"
    code = (
        "from byok import registry\n"
        f"registry.register_provider(kind='openai', name='paced', base_url='{fake.url}/cfg/chunks=30;delay_ms=60/v1', "
        "default_model='gpt-4o-mini', api_key='sk-browser-paced-0123456789', is_default=True)\n"
        f"registry.register_provider(kind='openai', name='slow', base_url='{fake.url}/cfg/chunks=600;delay_ms=30/v1', "
        "default_model='gpt-4o-mini', api_key='sk-browser-slow-0123456789')\n"
    )
    manage(env, "shell", "-c", code)
    call_command(
        "collectstatic", "--noinput", verbosity=0
    )  # ServeStatic (DEBUG off) serves chat.js/css from STATIC_ROOT
    server = start_daphne(env, tmp)
    yield server, fake
    server.stop()
    fake.stop()
    drop_live_env(env)


def fake_records(fake, **params) -> list[dict]:
    with fake.control() as control:
        body = control.get("/_control/requests", params=params).json()
    return body["requests"] if isinstance(body, dict) else body


@pytest.mark.browser
def test_a_browser_chats_streams_and_cancels(site):
    from playwright.sync_api import expect, sync_playwright

    server, fake = site
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # Log in: /chat/ sends an anonymous visitor to the admin login and back.
            log_in(page, server.url, "/chat/")
            expect(page.locator("#conn")).to_have_text("connected", timeout=10_000)

            # First answer: the bubble grows token by token, then shows provider, usage and latency.
            page.select_option("#provider", "paced")
            page.fill("#prompt", "Hello there")
            page.keyboard.press("Enter")
            answer = page.locator(".msg.assistant").last
            lengths = []
            while answer.get_attribute("data-state") == "streaming":
                lengths.append(len(answer.locator(".body").inner_text()))
                page.wait_for_timeout(60)
                assert time.monotonic() - started < 25, "the answer did not finish"
            grew = [b for a, b in zip(lengths, lengths[1:]) if b > a]
            assert len(grew) >= 3, f"the answer did not grow token by token: {lengths}"
            assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
            expect(answer).to_have_attribute("data-state", "done")
            meta = answer.locator(".meta").inner_text()
            assert "paced" in meta and "out tokens" in meta and "first token" in meta, meta
            assert len(answer.locator(".body").inner_text()) > lengths[-1] or lengths[-1] > 0

            # Second answer, on the slow provider: cancel it while it streams.
            since = max([r["id"] for r in fake_records(fake)] or [0])
            page.select_option("#provider", "slow")
            page.fill("#prompt", "Now a long one, please")
            page.click("#send")
            second = page.locator(".msg.assistant").last
            expect(second.locator(".body")).not_to_have_text("", timeout=10_000)
            page.click("#cancel")
            expect(second).to_have_attribute("data-state", "cancelled", timeout=10_000)
            expect(second.locator(".meta")).to_contain_text("Cancelled")
            expect(page.locator("#send")).to_be_enabled()
            deadline = time.monotonic() + 5
            while not [r for r in fake_records(fake, outcome="cancelled") if r["id"] > since]:
                assert time.monotonic() < deadline, "the fake provider recorded no cancelled request"
                time.sleep(0.05)
            # The conversation went along: question, first answer, second question.
            [sent] = [r for r in fake_records(fake) if r["id"] > since]
            roles = [
                m["role"]
                for m in (sent["body"] if isinstance(sent["body"], dict) else json.loads(sent["body"]))["messages"]
            ]
            assert roles == ["user", "assistant", "user"]
            assert not errors, errors

            ARTIFACTS.mkdir(exist_ok=True)
            desktop = ARTIFACTS / "chat-page-desktop.png"
            page.screenshot(path=str(desktop))
            page.set_viewport_size({"width": 375, "height": 812})
            phone = ARTIFACTS / "chat-page-phone.png"
            page.screenshot(path=str(phone))
            assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling on a phone
        finally:
            browser.close()
    for shot in (desktop, phone):
        print(f"chat page screenshot: {Path(shot).resolve()}")
