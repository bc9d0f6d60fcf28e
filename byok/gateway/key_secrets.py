"""Provider keys in the clear, decrypted once per process and forgotten when the key goes.

    secrets = KeySecrets()
    secret = secrets.reveal(key)        # decrypts on first use; MasterKeyMismatchError when it cannot
    secrets.keep(snapshot)              # on every configuration load: drop keys that are gone

A key this process's master key(s) cannot open is logged once (then skipped by the failover loop
on each try), so a half-finished master-key rotation is visible without flooding the log. Every
revealed secret is registered with `byok.secrets.remember_secret`, so logs and error pages mask it.
"""

from __future__ import annotations

import logging

from byok.exceptions import MasterKeyMismatchError
from byok.gateway.config_cache import KeyConfig, Snapshot
from byok.secrets import remember_secret

__all__ = ["KeySecrets"]

log = logging.getLogger("byok.request")


class KeySecrets:
    def __init__(self) -> None:
        self._secrets: dict[bytes, str] = {}
        self._unreadable: set[bytes] = set()  # keys this process's master key(s) cannot open, logged once each

    def keep(self, snap: Snapshot) -> None:
        live = {k.sealed.token for p in snap.ordered for k in p.keys}
        self._secrets = {t: s for t, s in self._secrets.items() if t in live}

    def reveal(self, key: KeyConfig) -> str:
        secret = self._secrets.get(key.sealed.token)
        if secret is None:
            try:
                secret = key.sealed.reveal()
            except MasterKeyMismatchError:
                if key.sealed.token not in self._unreadable:
                    self._unreadable.add(key.sealed.token)
                    log.error(
                        "master_key_mismatch: key id=%s %s cannot be decrypted with BYOK_MASTER_KEY (nor "
                        "BYOK_MASTER_KEY_PREVIOUS); this process skips it until it runs with the right master key",
                        key.id,
                        key.hint,
                    )
                raise
            remember_secret(secret)
            self._secrets[key.sealed.token] = secret
        return secret
