"""Model allow-list patterns: `openai/*`, `anthropic/claude-*`, `gpt-4o-mini`, `*` (shell-style, case-sensitive).

    allowed(("openai/*", "gpt-4o-mini"), "openai/gpt-4o")   # True
    allowed((), "anything")                                  # True: an empty list allows every model
    unreachable(["mistral/*"], {"openai", "anthropic"})      # ["mistral/*"]: no configured provider is called so

A pattern with a slash is matched against `<provider>/<model>`; one without is matched
against the model alone, whichever provider serves it. A request names `<provider>/<model>`
or a bare model (then the name the router resolves it to is checked too: see `byok.keys.entry`).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

__all__ = ["MAX_PATTERN", "MAX_PATTERNS", "allowed", "pattern_problem", "unreachable"]

MAX_PATTERNS = 100
MAX_PATTERN = 200


def _matches(pattern: str, name: str) -> bool:
    if "/" in pattern:
        return fnmatchcase(name, pattern)
    return fnmatchcase(name, pattern) or ("/" in name and fnmatchcase(name.split("/", 1)[1], pattern))


def allowed(patterns: tuple[str, ...] | list[str], name: str) -> bool:
    """Whether ``name`` passes ``patterns`` (empty: everything passes)."""
    return not patterns or any(_matches(p, name) for p in patterns)


def pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` is not a pattern at all (None when it is one)."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "a non-empty string"
    if len(pattern) > MAX_PATTERN:
        return f"at most {MAX_PATTERN} characters"
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in pattern):
        return "no spaces or control characters"
    if pattern.startswith("/") or pattern.endswith("/"):
        return "`<provider>/<model>` or a bare model"
    return None


def unreachable(patterns: Iterable[str], providers: Iterable[str]) -> list[str]:
    """The patterns whose provider part matches no configured provider name (they can never match)."""
    names = list(providers)
    out = []
    for pattern in patterns:
        if "/" not in pattern:
            if not names:
                out.append(pattern)
            continue
        head = pattern.split("/", 1)[0]
        if not any(fnmatchcase(name, head) for name in names):
            out.append(pattern)
    return out
