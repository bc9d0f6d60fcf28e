"""The time arithmetic both state backends share: rate windows, quota windows, calendar periods.

Rate limits use a sliding 60 s window made of 1 s buckets. A request counted
in bucket ``b`` (``b = floor(t)``) stays counted until ``(b + 61) * 1 s``, i.e.
for at least 60 s and at most 61 s after it happened: the window is never more
permissive than a true 60 s sliding window, and costs a fixed 61 buckets per
key whatever the traffic. The Lua scripts in ``lua/`` implement the same
formulas; the tests run both backends against the same expectations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = [
    "BUCKET_S",
    "WINDOW_BUCKETS",
    "WINDOW_S",
    "Verdict",
    "bucket_expiry",
    "bucket_of",
    "calendar_period",
    "quota_window",
    "window_retry_at",
]

WINDOW_S = 60.0
BUCKET_S = 1.0
# One more bucket than the window holds, so that nothing leaves early (see module doc).
WINDOW_BUCKETS = int(WINDOW_S / BUCKET_S) + 1


def bucket_of(t: float) -> int:
    """The index of the 1 s bucket that time ``t`` falls in."""
    return math.floor(t / BUCKET_S)


def bucket_expiry(bucket: int) -> float:
    """When what was counted in ``bucket`` stops counting."""
    return (bucket + WINDOW_BUCKETS) * BUCKET_S


def window_retry_at(buckets: Mapping[int, int], need: int) -> float:
    """The time when at least ``need`` units of ``buckets`` will have left the window.

    ``need`` must be positive and at most the sum of the buckets; otherwise
    (which only happens with negative corrections) returns the latest expiry.
    """
    freed = 0
    last = 0.0
    for bucket in sorted(buckets):
        freed += buckets[bucket]
        last = bucket_expiry(bucket)
        if freed >= need:
            return last
    return last


def quota_window(now: float, window_s: float) -> tuple[int, float]:
    """The aligned quota window containing ``now``: its index and when it ends."""
    idx = math.floor(now / window_s)
    return idx, (idx + 1) * window_s


def calendar_period(now: float, period: str) -> tuple[str, float]:
    """The UTC calendar ``period`` ("day" or "month") containing ``now``: its id and when it ends."""
    dt = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
        return start.strftime("%Y-%m-%d"), start.timestamp() + 86400.0
    if period == "month":
        nxt = datetime(dt.year + (dt.month == 12), dt.month % 12 + 1, 1, tzinfo=UTC)
        return dt.strftime("%Y-%m"), nxt.timestamp()
    raise ValueError(f"period must be 'day' or 'month', not {period!r}")


class Verdict:
    """The outcome of checking several limits: the one that keeps a request out longest wins.

    ``refuse(reason, at)`` records a failed limit (``at`` = when it could fit,
    ``math.inf`` for never); on a tie the reason refused first is kept, so the
    order of checks sets the priority (cooldown, steer, rpm, tpm, quota).
    """

    __slots__ = ("reason", "at")

    def __init__(self) -> None:
        self.reason: str | None = None
        self.at = -math.inf

    def refuse(self, reason: str, at: float) -> None:
        if self.reason is None or at > self.at:
            self.reason, self.at = reason, at

    @property
    def refused(self) -> bool:
        return self.reason is not None

    @property
    def retry_at(self) -> float | None:
        """When the request could fit, or None if it never can (or was not refused)."""
        if self.reason is None or math.isinf(self.at):
            return None
        return self.at
