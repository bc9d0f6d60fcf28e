"""Numbers as people read them, for every admin page: milliseconds, dollars, token counts.

    >>> ms(22.357187000125123), usd(Decimal("0.01234")), thousands(1234567)
    ('22.4 ms', '$0.0123', '1,234,567')

Missing values (an unpriced request, a stream without a first token) read "—", never "None".
The same functions back the template filters in ``byok.templatetags.byok_format``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.formats import date_format

MISSING = "—"


def ms(value: float | Decimal | None) -> str:
    """Milliseconds with one decimal and thousands separators: ``1,234.5 ms``."""
    if value is None:
        return MISSING
    return f"{float(value):,.1f} ms"


def usd(value: float | Decimal | str | None) -> str:
    """US dollars: four decimals under a dollar (``$0.0123``), cents above (``$1,234.56``).

    A positive amount too small for four decimals reads ``<$0.0001`` rather than a
    misleading ``$0.0000``.
    """
    if value is None or value == "":
        return MISSING
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "$0.00"
    if amount < Decimal("0.0001"):
        return f"{sign}<$0.0001"
    if amount < 1:
        return f"{sign}${amount:,.4f}"
    return f"{sign}${amount:,.2f}"


def thousands(value: int | float | Decimal | None) -> str:
    """A count with thousands separators: ``1,234,567``."""
    if value is None:
        return MISSING
    return f"{int(value):,}"


def compact(value: float | Decimal | None) -> str:
    """A short axis label: ``950``, ``1.2k``, ``3.4M``; fractions keep up to two significant decimals."""
    if value is None:
        return MISSING
    number = float(value)
    size = abs(number)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            text = f"{number / limit:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    if size == 0 or size >= 10 or number == int(number):
        return f"{number:.0f}"
    return f"{number:.2g}" if size < 1 else f"{number:.1f}".removesuffix(".0")


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal; ``—`` when there is no whole."""
    if not whole:
        return MISSING
    return f"{100 * part / whole:.1f}%"


def when(moment: datetime | None) -> str:
    """A moment in a list column, in the site's time zone: ``Mar 10, 12:30:05`` (the year when not this one)."""
    if moment is None:
        return MISSING
    local = timezone.localtime(moment)
    pattern = "M j, H:i:s" if local.year == timezone.localtime().year else "M j Y, H:i"
    return date_format(local, pattern)
