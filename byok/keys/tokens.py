"""DRF API tokens, stored hashed: the `authtoken_token.key` column holds ``s$`` + 38 hex of SHA-256.

    plain = issue_token(user, actor=actor)     # a new token (replacing the user's old one), shown once
    Token.objects.get(key=stored_form(plain))  # how authentication finds it

DRF keeps the token in `Token.key` (its primary key, 40 characters). Every save
of a token whose key is not in stored form yet is hashed on the way in (a
`pre_save` hook), so a token made by DRF's own code paths, the admin or a test
is never stored in plain text; the one who made it reads it from
`token.plaintext` once. Migration 0004 rewrites tokens stored before this.
"""

from __future__ import annotations

import hashlib

from django.db.models.signals import pre_save
from rest_framework.authtoken.models import Token

from byok.audit import Actor
from byok.changes import audited_change

__all__ = ["STORED_MARK", "issue_token", "revoke_tokens", "stored_form"]

STORED_MARK = "s$"


def stored_form(token: str) -> str:
    """What the database holds for the plain ``token`` (always hashed: a stored form sent back finds nothing)."""
    return STORED_MARK + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:38]


def _hash_on_save(sender, instance: Token, **kwargs) -> None:
    if instance.key and not instance.key.startswith(STORED_MARK):
        instance.plaintext = instance.key  # type: ignore[attr-defined]  # read once by whoever made it
        instance.key = stored_form(instance.key)  # a key already in stored form is left as it is


pre_save.connect(_hash_on_save, sender=Token, dispatch_uid="byok-hash-drf-token")


def issue_token(user, *, actor: Actor | None = None) -> str:
    """A new API token for ``user`` (its old one, if any, stops working); the plain token, to show once."""
    with audited_change(actor) as change:
        replaced = Token.objects.filter(user=user).delete()[0] > 0
        token = Token(user=user)
        token.save()
        change.record("token.create", target=user, details={"replaced": replaced})
    return token.plaintext  # type: ignore[attr-defined]


def revoke_tokens(user, *, actor: Actor | None = None) -> bool:
    """Delete ``user``'s API token (audited); False when there was none."""
    with audited_change(actor) as change:
        if Token.objects.filter(user=user).delete()[0] == 0:
            return False
        change.record("token.revoke", target=user)
    return True
