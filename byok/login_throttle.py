"""A limit on sign-in attempts at /login/ and /admin/login/, counted in the shared state.

Once ``BYOK["LOGIN_MAX_FAILURES"]`` attempts have failed in a ``BYOK["LOGIN_WINDOW_S"]`` window for
one username or from one client address, further POSTs get a 429 with Retry-After, the password
unchecked, the same answer whether the username exists or not. The counts are the key pool's quota
counter (``StateBackend.acquire`` with a quota window): in Redis with ``REDIS_URL``, so every
process counts together, else in this process.

Each POST takes one attempt from its address's and its username's allowance *before* the password
is checked, so guesses sent all at once cannot all pass a check made before any of them failed; a
sign-in that succeeds gives its attempt back to the address and clears the username's count.
Windows are aligned to multiples of their length, as quota windows are: failures straddling the
end of one can reach twice the limit within one window's length, never more.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Sequence

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.http import HttpResponse
from django.shortcuts import render

from byok.audit import client_address
from byok.state import StateUnavailable, get_state_backend

__all__ = ["throttled"]

log = logging.getLogger("byok.auth")
clock: Callable[[], float] = time.time  # the shared state's clock; tests move it
_SIGNED_IN = "_byok_signed_in"


def _mark_signed_in(sender, request=None, **kwargs) -> None:
    if request is not None:
        setattr(request, _SIGNED_IN, True)


# Only a real login() marks the request: a POST answered without checking credentials never clears a count.
user_logged_in.connect(_mark_signed_in, dispatch_uid="byok.login_throttle")


def _scopes(username: str, address: str | None) -> tuple[str | None, str | None]:
    """The counters of an attempt: its address's (an IPv6 client's whole /64) and its username's (case-folded)."""
    by_address = None
    if address is not None:
        ip = ipaddress.ip_address(address)
        where = ipaddress.ip_network(f"{ip}/64", strict=False).network_address if ip.version == 6 else ip
        by_address = f"login:addr:{where}"
    name = username.strip().casefold()
    by_user = f"login:user:{hashlib.sha256(name.encode()).hexdigest()[:32]}" if name else None
    return by_address, by_user


def _state():
    return get_state_backend(settings.REDIS_URL, prefix=settings.BYOK["STATE_PREFIX"], now=clock)


async def _take(scopes: Sequence[str], limit: int, window_s: int) -> tuple[float, float | None]:
    """Count one attempt in each scope, stopping at the first that is full: (now, None) or (now, retry at)."""
    state = _state()
    at = clock()
    try:
        for scope in scopes:
            got = await state.acquire(scope, rpm=None, tpm=None, tokens=1, quota=limit, quota_window_s=window_s)
            at = got.at
            if not got:
                return at, got.retry_at if got.retry_at is not None else at + window_s
        return at, None
    finally:
        await state.close()


async def _give_back(by_address: str | None, by_user: str | None, at: float) -> None:
    state = _state()
    try:
        if by_address is not None:
            await state.record_tokens(by_address, -1, at=at)
        if by_user is not None:
            await state.clear_quota(by_user)
    finally:
        await state.close()


def _too_many(request, seconds: int) -> HttpResponse:
    answer = render(request, "byok/login_throttled.html", {"seconds": seconds}, status=429)
    answer["Retry-After"] = str(seconds)
    answer["Cache-Control"] = "no-store"
    return answer


def throttled(view):
    """Wrap a sign-in view: count its POSTs, refuse them with a 429 past the limit (see the module)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        limit, window_s = settings.BYOK["LOGIN_MAX_FAILURES"], settings.BYOK["LOGIN_WINDOW_S"]
        if request.method != "POST" or limit <= 0:
            return view(request, *args, **kwargs)
        username, address = request.POST.get("username", ""), client_address(request)
        by_address, by_user = _scopes(username, address)
        who = f"username={username[:150]!r} address={address} page={request.path}"  # never the password
        try:
            at, retry_at = async_to_sync(_take)([s for s in (by_address, by_user) if s], limit, window_s)
        except StateUnavailable:  # sign-in stays possible while Redis is away, unthrottled, and says so
            log.error("sign-in not throttled: the shared state is unavailable (%s)", who)
            return view(request, *args, **kwargs)
        if retry_at is not None:
            log.warning("sign-in refused, too many attempts: %s", who)
            return _too_many(request, max(1, math.ceil(retry_at - at)))
        answer = view(request, *args, **kwargs)
        if getattr(request, _SIGNED_IN, False):
            try:
                async_to_sync(_give_back)(by_address, by_user, at)
            except StateUnavailable:
                log.error("sign-in count not cleared: the shared state is unavailable (%s)", who)
        else:
            log.warning("sign-in failed: %s", who)
        return answer

    return wrapper
