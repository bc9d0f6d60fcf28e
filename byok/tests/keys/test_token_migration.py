"""Migration 0004 rewrites API tokens stored in plain text as their hashes, and the old tokens keep working."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("byok", "0003_usage_overhead")]
AFTER = [("byok", "0004_gateway_keys")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_plain_tokens_become_hashes_that_still_authenticate(django_user_model):
    from rest_framework.test import APIClient

    from byok.keys.tokens import stored_form

    plain = "0123456789abcdef0123456789abcdef01234567"
    try:
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO auth_user (username, password, is_superuser, is_staff, is_active, first_name,"
                " last_name, email, date_joined) VALUES ('olduser', '', true, true, true, '', '', '',"
                " '2026-01-01 00:00:00+00')"
            )
            cursor.execute("SELECT id FROM auth_user WHERE username = 'olduser'")
            user_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO authtoken_token (key, user_id, created) VALUES (%s, %s, '2026-01-02 00:00:00+00')",
                [plain, user_id],
            )
    finally:
        _migrate(AFTER)
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, created FROM authtoken_token WHERE user_id = %s", [user_id])
        ((stored, created),) = cursor.fetchall()
    assert stored == stored_form(plain) and plain not in stored and created.year == 2026 and created.day == 2
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/providers").status_code == 200
