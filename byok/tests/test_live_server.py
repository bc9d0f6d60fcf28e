"""A real daphne process with its own database answers, and its admin API token works."""

from __future__ import annotations

import pytest

from byok.tests.live import drop_live_env, live_env, start_daphne


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    env = live_env(tmp)
    server = start_daphne(env, tmp)
    yield server
    server.stop()
    drop_live_env(env)


def test_daphne_serves_the_admin_login_page(server):
    import httpx

    response = httpx.get(server.url + "/admin/login/")
    assert response.status_code == 200
    assert b"byok" in response.content or b"Django" in response.content
    assert server.admin_token
