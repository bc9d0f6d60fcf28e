"""The admin: pages render for staff only, keys show only as hints, each change is audited once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from byok import registry
from byok.models import ApiKey, AuditEvent, Provider
from byok.tests.conftest import CANARY

pytestmark = pytest.mark.django_db
ADDR = "203.0.113.9"


@pytest.fixture
def provider():
    return registry.register_provider(kind="openai", name="oa", api_key=CANARY)


def _inline_management(prefix: str, total: int, initial: int) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def _provider_form(provider: Provider | None = None, **overrides) -> dict:
    data = {
        "name": "an",
        "kind": "anthropic",
        "base_url": "",
        "default_model": "claude-x",
        "timeout": "30",
        "max_retries": "2",
        "enabled": "on",
        "priority": "10",
    }
    if provider is not None:
        data.update(
            name=provider.name,
            kind=provider.kind,
            default_model=provider.default_model,
            timeout=str(provider.timeout),
            priority=str(provider.priority),
        )
    data.update(_inline_management("keys", 0, 0))
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "url",
    [
        "/admin/byok/provider/",
        "/admin/byok/apikey/",
        "/admin/byok/auditevent/",
        "/admin/byok/usagerecord/",
    ],
)
def test_admin_pages_render_for_staff_and_show_only_hints(admin_browser, provider, url):
    response = admin_browser.get(url)
    assert response.status_code == 200
    assert CANARY not in response.content.decode()


def test_the_change_forms_show_the_hint_never_the_secret(admin_browser, provider):
    key = provider.keys.get()
    for url in (
        reverse("admin:byok_provider_change", args=[provider.pk]),
        reverse("admin:byok_apikey_change", args=[key.pk]),
    ):
        page = admin_browser.get(url).content.decode()
        assert key.hint in page
        assert CANARY not in page
        assert CANARY[-12:] not in page


def test_admin_pages_are_refused_to_non_staff(client, bob, provider):
    client.force_login(bob)
    response = client.get("/admin/byok/provider/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_creating_a_provider_with_a_key_in_the_admin_writes_one_event_each(admin_browser):
    data = _provider_form(
        **_inline_management("keys", 1, 0),
        **{"keys-0-label": "main", "keys-0-api_key": CANARY, "keys-0-quota_window": ""},
    )
    response = admin_browser.post(reverse("admin:byok_provider_add"), data, REMOTE_ADDR=ADDR)
    assert response.status_code == 302, response.content.decode()[:2000]
    events = list(AuditEvent.objects.order_by("id").values_list("action", "actor", "source_address"))
    assert events == [("provider.create", "alice", ADDR), ("key.create", "alice", ADDR)]
    assert ApiKey.objects.get().secret.reveal() == CANARY


def test_updating_a_provider_in_the_admin_writes_one_event(admin_browser, provider):
    key = provider.keys.get()
    data = _provider_form(
        provider,
        default_model="gpt-4o-mini",
        **_inline_management("keys", 1, 1),
        **{
            "keys-0-id": str(key.pk),
            "keys-0-provider": str(provider.pk),
            "keys-0-label": "",
            "keys-0-quota_window": "",
        },
    )
    before = AuditEvent.objects.count()
    response = admin_browser.post(reverse("admin:byok_provider_change", args=[provider.pk]), data, REMOTE_ADDR=ADDR)
    assert response.status_code == 302, response.content.decode()[:2000]
    new = list(AuditEvent.objects.order_by("id")[before:])
    assert [(e.action, e.actor, e.source_address) for e in new] == [("provider.update", "alice", ADDR)]
    assert new[0].details == {"fields": ["default_model"]}


def test_deleting_a_provider_in_the_admin_writes_one_event(admin_browser, provider):
    response = admin_browser.post(
        reverse("admin:byok_provider_delete", args=[provider.pk]), {"post": "yes"}, REMOTE_ADDR=ADDR
    )
    assert response.status_code == 302
    assert not Provider.objects.exists()
    assert list(AuditEvent.objects.filter(action="provider.delete").values_list("actor", "provider_name")) == [
        ("alice", "oa")
    ]


def test_the_revoke_action_revokes_and_audits(admin_browser, provider):
    key = provider.keys.get()
    response = admin_browser.post(
        reverse("admin:byok_apikey_changelist"),
        {"action": "revoke_keys", "_selected_action": [key.pk]},
        REMOTE_ADDR=ADDR,
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.status == "revoked"
    event = AuditEvent.objects.get(action="key.revoke")
    assert (event.actor, event.source_address, event.key_fingerprint) == ("alice", ADDR, key.fingerprint)


def test_the_rotate_action_asks_for_the_new_key_then_rotates(admin_browser, provider):
    key = provider.keys.get()
    url = reverse("admin:byok_apikey_changelist")
    page = admin_browser.post(url, {"action": "rotate_key", "_selected_action": [key.pk]})
    assert page.status_code == 200 and b"New API key" in page.content
    response = admin_browser.post(
        url,
        {"action": "rotate_key", "_selected_action": [key.pk], "new_api_key": "sk-newkey-0123456789abcdef"},
        REMOTE_ADDR=ADDR,
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.status == "retired"
    new = provider.keys.get(status="active")
    assert new.secret.reveal() == "sk-newkey-0123456789abcdef"
    assert list(AuditEvent.objects.filter(action="key.rotate").values_list("actor", "source_address")) == [
        ("alice", ADDR)
    ]


def test_adding_a_key_in_the_key_admin_is_audited_and_needs_a_secret(admin_browser, provider):
    url = reverse("admin:byok_apikey_add")
    base = {"provider": str(provider.pk), "label": "second", "quota_window": ""}
    assert admin_browser.post(url, base).status_code == 200  # re-shown with an error: no secret
    response = admin_browser.post(url, {**base, "api_key": "sk-second-0123456789abcd"}, REMOTE_ADDR=ADDR)
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="key.create", actor="alice").count() == 1


def test_the_audit_log_is_read_only_in_the_admin(admin_browser, provider):
    event = AuditEvent.objects.get()
    assert admin_browser.get(reverse("admin:byok_auditevent_add")).status_code == 403
    assert (
        admin_browser.post(reverse("admin:byok_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    )
    filtered = admin_browser.get(
        reverse("admin:byok_auditevent_changelist"), {"action": "provider.create", "actor": "system"}
    )
    assert filtered.status_code == 200 and b"provider.create" in filtered.content


def test_a_private_base_url_is_refused_in_the_admin(admin_browser, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": False}
    response = admin_browser.post(reverse("admin:byok_provider_add"), _provider_form(base_url="http://127.0.0.1:9/v1"))
    assert response.status_code == 200
    assert b"loopback" in response.content
    assert not Provider.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_test_action_makes_a_live_call_and_reports_it(admin_browser, provider):
    import respx

    from byok.gateway.handler import get_handler

    get_handler().invalidate()
    with respx.mock:
        route = respx.post("https://api.openai.com/v1/chat/completions").respond(
            200,
            json={
                "id": "x",
                "model": "gpt-4o",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "length"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )
        response = admin_browser.post(
            reverse("admin:byok_apikey_changelist"),
            {"action": "test_keys", "_selected_action": [provider.keys.get().pk]},
            follow=True,
        )
    assert route.call_count == 1
    assert b"Oa: ok in" in response.content  # the admin capitalises messages
    with respx.mock:
        respx.post("https://api.openai.com/v1/chat/completions").respond(
            401, json={"error": {"message": "Incorrect API key"}}
        )
        response = admin_browser.post(
            reverse("admin:byok_provider_changelist"),
            {"action": "test_providers", "_selected_action": [provider.pk]},
            follow=True,
        )
    assert b"Oa: failed" in response.content
    assert CANARY not in response.content.decode()


NON_ASCII_KEY = "sk-caf\u00e9-0123456789abcdef"


def test_a_key_with_a_non_ascii_character_is_refused_by_the_key_form(admin_browser, provider):
    response = admin_browser.post(
        reverse("admin:byok_apikey_add"),
        {"provider": str(provider.pk), "label": "x", "quota_window": "", "api_key": NON_ASCII_KEY},
    )
    assert response.status_code == 200 and b"HTTP header" in response.content
    assert provider.keys.count() == 1 and not AuditEvent.objects.filter(action="key.create").exists()


def test_the_rotate_action_refuses_a_non_ascii_key_naming_the_field(admin_browser, provider):
    key = provider.keys.get()
    response = admin_browser.post(
        reverse("admin:byok_apikey_changelist"),
        {"action": "rotate_key", "_selected_action": [key.pk], "new_api_key": "sk-\u200bzero-width-0123456789"},
    )
    assert response.status_code == 200 and b"HTTP header" in response.content and b"New API key" in response.content
    key.refresh_from_db()
    assert key.status == "active" and provider.keys.count() == 1
