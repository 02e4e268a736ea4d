"""Short forms of long values for admin lists.

Every list must fit a 1400 px window without sideways scrolling, so long text and timestamps
are shortened in the cell and the whole value is kept one hover away, in a title attribute.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator


def short_text(value: object, chars: int = 40):
    """The value cut to about `chars` characters, the whole of it in the title; "—" if empty."""
    text = "" if value is None else str(value)
    if not text:
        return "—"
    if len(text) <= chars:
        return text
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(chars))


def short_time(moment: datetime | None):
    """ "2026-12-06 11:45", with the seconds and the time zone in the title."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment)
    return format_html(
        '<span title="{}">{}</span>',
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%Y-%m-%d %H:%M"),
    )
