"""DEBUG's technical 500 page never carries a secret, and DEBUG is refused on a reachable server."""

from __future__ import annotations

import secrets
import sys

import pytest
from django.test import RequestFactory, override_settings
from django.views.debug import technical_500_response

from byok.crypto import SealedSecret
from byok.secrets import remember_secret
from byok.tests.live import STARTUP_ENV, import_asgi

# Made at run time, so the page's source-code excerpts cannot contain them.
OPENAI_SHAPED = "sk-proj-" + secrets.token_hex(16)
ODD_SHAPED = "odd:" + secrets.token_hex(8)  # no known key shape: found because byok decrypted it
NAMED = secrets.token_hex(8)  # caught by its variable's name alone
TOKEN = "byok_" + secrets.token_hex(16)


def _crash(sealed: SealedSecret) -> None:
    plain = OPENAI_SHAPED  # noqa: F841 - local variables are what the page shows
    value = f"Bearer-less header value {ODD_SHAPED}"  # noqa: F841
    api_key = NAMED  # noqa: F841
    raise RuntimeError(f"upstream refused key {OPENAI_SHAPED}")


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_the_technical_500_page_shows_no_key_from_frames_headers_or_the_message():
    remember_secret(ODD_SHAPED)
    request = RequestFactory().post(
        "/v1/chat/completions", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_X_NOTE=OPENAI_SHAPED
    )
    try:
        _crash(SealedSecret.seal(OPENAI_SHAPED))
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    page = response.content.decode()
    assert "_crash" in page and "RuntimeError" in page  # still a useful page
    for canary in (OPENAI_SHAPED, ODD_SHAPED, NAMED, TOKEN):
        assert canary not in page
    assert "SealedSecret(&lt;hidden&gt;)" in page


@override_settings(DEBUG=True, BACKUP_DATABASE_URL="postgres://u:pw-" + "canary-42@db/x")
def test_the_settings_section_hides_passwords_inside_urls():
    from django.views.debug import get_exception_reporter_filter

    settings_shown = get_exception_reporter_filter(None).get_safe_settings()
    assert "pw-canary-42" not in repr(settings_shown)


@pytest.mark.parametrize("hosts", ["byok.example.com", "127.0.0.1,gateway.internal", "*"])
def test_debug_is_refused_when_allowed_hosts_is_not_loopback_only(hosts):
    result = import_asgi({**STARTUP_ENV, "DEBUG": "true", "ALLOWED_HOSTS": hosts})
    assert result.returncode != 0
    assert "DEBUG=true is only allowed when ALLOWED_HOSTS lists loopback names only" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_starts_on_a_loopback_only_server():
    result = import_asgi({**STARTUP_ENV, "DEBUG": "true", "ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]"})
    assert result.returncode == 0, result.stderr
