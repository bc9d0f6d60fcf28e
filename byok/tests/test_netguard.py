"""The SSRF guard for provider base URLs: resolve the host and refuse non-public addresses."""

from __future__ import annotations

import socket

import pytest

from byok.netguard import check_base_url


def resolver(*addresses: str):
    return lambda host: list(addresses)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/v1",
        "http://10.1.2.3/v1",
        "http://192.168.0.2/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest",
        "http://[::1]/v1",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://224.0.0.1/",
    ],
)
def test_literal_private_addresses_are_refused(url):
    assert "BYOK_ALLOW_PRIVATE_BASE_URLS" in check_base_url(url, allow_private=False)


def test_a_name_resolving_to_a_private_address_is_refused():
    reason = check_base_url(
        "https://api.example.com/v1", allow_private=False, resolve=resolver("93.184.216.34", "10.0.0.5")
    )
    assert reason and "private" in reason


def test_a_name_resolving_to_public_addresses_is_accepted():
    assert check_base_url("https://api.example.com/v1", allow_private=False, resolve=resolver("93.184.216.34")) is None


def test_an_unresolvable_host_is_refused():
    def fail(host):
        raise socket.gaierror("no such host")

    assert "cannot be resolved" in check_base_url("https://nowhere.invalid/v1", allow_private=False, resolve=fail)


@pytest.mark.parametrize(
    "url,expected",
    [
        ("ftp://example.com/", "http(s)"),
        ("http:///nohost", "http(s)"),
        ("https://user:pw@example.com/", "credentials"),
        ("http://example.com:99999/", "valid URL"),
    ],
)
def test_malformed_urls_are_refused(url, expected):
    assert expected in check_base_url(url, allow_private=True, resolve=resolver("93.184.216.34"))


def test_private_addresses_are_allowed_when_configured():
    assert check_base_url("http://127.0.0.1:8080/v1", allow_private=True) is None


@pytest.mark.parametrize(
    "host",
    [
        "::7f00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "fec0::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: its client address 192.0.2.45 is documentation space
    ],
)
def test_ipv6_forms_embedding_private_ipv4_or_site_local_are_refused(host):
    assert "BYOK_ALLOW_PRIVATE_BASE_URLS" in check_base_url(f"http://[{host}]/v1", allow_private=False)
    assert "BYOK_ALLOW_PRIVATE_BASE_URLS" in check_base_url(
        "https://api.example.com/v1", allow_private=False, resolve=resolver(host)
    )


@pytest.mark.parametrize("host", ["2002:808:808::1", "64:ff9b::808:808", "2606:4700:4700::1111"])
def test_ipv6_forms_embedding_public_ipv4_are_accepted(host):
    assert check_base_url(f"http://[{host}]/v1", allow_private=False) is None
