"""Template filters for human numbers in the admin: ``{{ value|ms }}``, ``{{ value|usd }}``, ``{{ value|thousands }}``.

Load with ``{% load byok_format %}``; the functions are byok.admin.formats.
"""

from django import template

from byok.admin import formats

register = template.Library()
register.filter("ms", formats.ms)
register.filter("usd", formats.usd)
register.filter("thousands", formats.thousands)
register.filter("compact", formats.compact)
