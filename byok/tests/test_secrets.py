"""Hints, fingerprints and the redaction that keeps keys out of logs and messages."""

from __future__ import annotations

import logging

from byok.exceptions import AuthError
from byok.secrets import RedactingFilter, fingerprint, hint, install_log_redaction, redact, remember_secret


def test_hints_show_a_known_prefix_and_the_last_four():
    assert hint("sk-proj-abcdefghijklmnop1234") == "sk-proj-…1234"
    assert hint("AIzaSyA-0123456789abcdefghijkl") == "AIza…ijkl"
    assert hint("plainsecretvalue99") == "…ue99"
    assert hint("short") == "…"


def test_fingerprints_are_stable_and_short():
    assert fingerprint("sk-abc-0123456789") == fingerprint(" sk-abc-0123456789 ")
    assert len(fingerprint("x" * 40)) == 16


def test_redact_scrubs_provider_key_shapes_and_remembered_secrets():
    text = (
        "keys sk-ant-api03-abcdefghijkl sk-proj-ABCDEFGHIJKLMNOPQRST AIzaSyA0123456789abcdefghijk Bearer "
        "abcdefghijklmnopqrstuv"
    )
    cleaned = redact(text)
    assert "abcdefghijkl" not in cleaned and "ABCDEFGH" not in cleaned and "0123456789" not in cleaned
    remember_secret("odd-shaped-credential-42")
    assert redact("value odd-shaped-credential-42 here") == "value [REDACTED] here"
    remember_secret("tiny")  # too short to be worth scrubbing
    assert redact("tiny") == "tiny"


def test_exceptions_never_carry_a_key():
    error = AuthError("Incorrect API key provided: sk-proj-ABCDEFGHIJKLMNOPQRST")
    assert "ABCDEFGHIJ" not in str(error) and "ABCDEFGHIJ" not in repr(error)


def test_the_filter_scrubs_messages_arguments_and_tracebacks(caplog):
    logger = logging.getLogger("byok.test.redaction")
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    records = []
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        logger.warning("calling with %s", "sk-proj-ABCDEFGHIJKLMNOPQRST")
        try:
            raise ValueError("boom sk-proj-ABCDEFGHIJKLMNOPQRST")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "ABCDEFGH" not in records[0].getMessage()
    assert "ABCDEFGH" not in records[1].exc_text and records[1].exc_info is None


def test_installed_everywhere_including_httpx():
    install_log_redaction()
    for name in ("httpx", "httpcore", "django", ""):
        assert any(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters)
