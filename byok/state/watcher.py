"""A cheap poller of the shared configuration version, for invalidating local caches.

The handler calls ``await watcher.changed()`` on every request; at most once
per ``max_age_s`` it asks the backend for the version (one round trip), and
otherwise returns False at no cost. With the default 0.5 s, a revoke or rotate
bumped in one process is seen by every other within about half a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from byok.state.base import StateBackend

__all__ = ["VersionWatcher"]


class VersionWatcher:
    """Tells, at most once per ``max_age_s``, whether the shared config version moved.

    ``changed()`` is True the first time it is called (nothing is known yet,
    so caches should be treated as stale) and then exactly once per observed
    change: among concurrent callers only the one that fetched sees it.
    """

    def __init__(
        self,
        backend: StateBackend,
        max_age_s: float = 0.5,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.max_age_s = max_age_s
        self._now = now
        self._checked_at = float("-inf")
        self.current: int | None = None

    async def changed(self) -> bool:
        """True when the version differs from the last one seen; polls at most once per ``max_age_s``."""
        now = self._now()
        if now - self._checked_at < self.max_age_s:
            return False
        previous_check = self._checked_at
        # Stamp before awaiting so concurrent callers don't all fetch.
        self._checked_at = now
        try:
            version = await self.backend.version()
        except BaseException:
            self._checked_at = previous_check  # try again on the next call
            raise
        if version == self.current:
            return False
        self.current = version
        return True

    def reset(self) -> None:
        """Make the next ``changed()`` fetch (e.g. right after this process bumped the version)."""
        self._checked_at = float("-inf")
