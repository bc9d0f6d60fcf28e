"""Self-service in a real browser (issue 14's test): an ordinary user signs in, makes a key, chats with it, sees it.

Debian's Chromium (headless, Playwright) against daphne and the fake provider: a non-staff user
signs in on `/login/`, creates a key on My keys (a model outside their team's list is a form
error first), reads the secret from the page, chats through the official openai SDK with it,
then finds that request on My usage and in `GET /api/me/usage` (session and key), and never
sees another user's key. Screenshots land in ``artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest
from django.core.management import call_command

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

SHOTS = ROOT / "artifacts" / "screenshots"
USER, PASSWORD = "dora", "dora-pass-1234"
MODEL = "writing/gpt-4o-mini"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("selfservice")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    env["BYOK_STATE_PREFIX"] = f"byok-self-{uuid.uuid4().hex[:8]}:"
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from byok import registry\n"
        "from byok.audit import Actor\n"
        "from byok.keys import store\n"
        f"registry.register_provider(kind='openai', name='writing', base_url='{fake.url}/v1', "
        "default_model='gpt-4o-mini', api_key='sk-self-browser-0123456789', is_default=True)\n"
        f"get_user_model().objects.create_user('{USER}', password='{PASSWORD}')\n"
        "get_user_model().objects.create_user('erin', password='erin-pass-1234')\n"
        f"store.create_team(actor=Actor('live-admin'), name='writers', members=['{USER}'], models=['{MODEL}'])\n"
        "store.create_key(actor=Actor('live-admin'), name='erins-secret-app', user='erin')\n"
    )
    manage(env, "shell", "-c", code)
    call_command("collectstatic", "--noinput", verbosity=0)  # ServeStatic (DEBUG off) serves from STATIC_ROOT
    server = start_daphne(env, tmp)
    yield server
    server.stop()
    fake.stop()
    drop_live_env(env)


def _total_requests(page, url: str, want: int) -> str:
    """Reload My usage until it counts ``want`` requests (the usage record is written off the request path)."""
    deadline = time.monotonic() + 20
    while True:
        page.goto(url + "/me/usage/")
        text = page.locator("#total-requests").inner_text()
        if text == str(want) or time.monotonic() > deadline:
            return text
        page.wait_for_timeout(250)


@pytest.mark.browser
def test_a_user_signs_in_makes_a_key_chats_with_it_and_sees_the_request(site):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            log_in(page, site.url, "/me/keys/", USER, PASSWORD)  # the plain sign-in, not the admin's
            page.screenshot(path=str(SHOTS / "me-keys-empty.png"), full_page=True)
            assert "erins-secret-app" not in page.content()

            # A model outside the team's allow-list is a form error; nothing is made.
            page.fill("#id_name", "my-laptop")
            page.select_option("#id_team", label="writers")
            page.fill("#id_models", "writing/gpt-4o")
            page.click("#new-key [type=submit]")
            expect(page.locator(".error").first).to_contain_text("Not allowed for team writers: writing/gpt-4o.")
            page.screenshot(path=str(SHOTS / "me-keys-refused.png"), full_page=True)

            page.fill("#id_models", MODEL)
            page.click("#new-key [type=submit]")
            secret = page.locator("#secret").inner_text().strip()
            assert secret.startswith("byok_") and len(secret) > 40
            page.screenshot(path=str(SHOTS / "me-key-created.png"), full_page=True)

            page.click("text=Back to My keys")
            listing = page.content()
            assert secret not in listing and "my-laptop" in listing and "writers" in listing
            page.screenshot(path=str(SHOTS / "me-keys.png"), full_page=True)

            sdk = openai.OpenAI(base_url=site.url + "/v1", api_key=secret, max_retries=0, timeout=30)
            answer = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi from dora"}])
            assert answer.choices[0].message.content and answer.usage is not None
            with pytest.raises(openai.PermissionDeniedError):  # the team's list holds for the key
                sdk.chat.completions.create(model="writing/gpt-4o", messages=[{"role": "user", "content": "x"}])

            assert _total_requests(page, site.url, 1) == "1"
            table = page.locator("#usage").inner_text()
            assert "gpt-4o-mini" in table and "my-laptop" in table and "erin" not in table
            assert page.locator("svg.byok-chart").count() == 3
            page.screenshot(path=str(SHOTS / "me-usage.png"), full_page=True)

            mine = page.request.get(site.url + "/api/me/usage").json()  # the session
            assert mine["totals"]["requests"] == 1 and mine["rows"][0]["key_name"] == "my-laptop"
            assert mine["totals"]["tokens_out"] == answer.usage.completion_tokens
            with httpx.Client(timeout=30) as client:  # the key itself
                by_key = client.get(site.url + "/api/me/usage", headers={"Authorization": f"Bearer {secret}"})
            assert by_key.status_code == 200 and by_key.json()["totals"] == mine["totals"]

            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(SHOTS / "me-usage-phone.png"), full_page=True)
            page.click("text=Log out")
            page.wait_for_url(site.url + "/login/")
            assert errors == []
        finally:
            browser.close()
