"""Small builders for the gateway's config objects (no database: keys are sealed with a throwaway Fernet)."""

from __future__ import annotations

from cryptography.fernet import Fernet

from byok.crypto import SealedSecret
from byok.gateway.config_cache import KeyConfig, ProviderConfig
from byok.gateway.routing import Target

FERNET = Fernet(Fernet.generate_key())


def key_config(
    key_id: int = 1,
    *,
    provider_id: int = 1,
    quota_group: str = "",
    rpm: int | None = None,
    tpm: int | None = None,
    status: str = "active",
) -> KeyConfig:
    return KeyConfig(
        id=key_id,
        provider_id=provider_id,
        hint=f"sk-\u2026{key_id:04d}",
        fingerprint=f"fp{key_id}",
        status=status,
        quota_group=quota_group,
        rpm=rpm,
        tpm=tpm,
        token_quota=None,
        quota_window_s=None,
        parked_until=None,
        sealed=SealedSecret(FERNET.encrypt(b"unused")),
    )


def provider_config(
    provider_id: int = 1,
    *,
    name: str = "oai",
    kind: str = "openai",
    keys: tuple[KeyConfig, ...] = (),
    max_retries: int = 2,
    base_url: str = "https://api.openai.test/v1",
) -> ProviderConfig:
    return ProviderConfig(
        id=provider_id,
        name=name,
        kind=kind,
        base_url=base_url,
        default_model="gpt-4o",
        timeout=5.0,
        max_retries=max_retries,
        enabled=True,
        is_default=False,
        priority=10,
        keys=keys,
    )


def target(provider: ProviderConfig, *, max_retries: int | None = None) -> Target:
    return Target(provider, provider.default_model, provider.max_retries if max_retries is None else max_retries)
