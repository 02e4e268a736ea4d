"""Cursor pagination: a page of rows in one key's order, and an opaque cursor for the next.

A cursor is the last row's key (a SKU, an id), base64 of JSON: opaque to clients, and a page follows from an
index range however deep it is (an offset would count every row before it).
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import urlencode

from django.db.models import IntegerField, QuerySet

from core.api.problems import ApiProblem
from core.ids import id_parse


def _not_ours() -> ApiProblem:
    return ApiProblem(
        400,
        "The cursor is not one this API gave; start again without it.",
        "invalid-cursor",
        [{"field": "cursor", "reason": "is not a cursor from a 'next' link"}],
    )


def cursor_after(cursor: str | None) -> str | int | None:
    """The key a cursor stands for; a 400 naming the field when it is not one of ours."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))["after"]
    except (binascii.Error, ValueError, UnicodeError, KeyError, TypeError):
        value = None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _not_ours()
    return value


def _key_value(queryset: QuerySet, key: str, after: str | int) -> str | int:
    """`after` when the key's column can hold it; a 400 otherwise. A cursor is base64 anyone
    can write: a word for an id, a number past a bigint or a NUL in a SKU would fail in the
    database (a 500) rather than find no row."""
    if isinstance(queryset.model._meta.get_field(key), IntegerField):
        value = id_parse(after) if isinstance(after, int) else None
    else:
        value = after if isinstance(after, str) and "\x00" not in after else None
    if value is None:
        raise _not_ours()
    return value


def page(request, queryset: QuerySet, *, key: str, limit: int, cursor: str | None):
    """The rows after the cursor, in `key` order, and the address of the next page (None on
    the last page)."""
    after = cursor_after(cursor)
    if after is not None:
        queryset = queryset.filter(**{f"{key}__gt": _key_value(queryset, key, after)})
    rows = list(queryset.order_by(key)[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    token = base64.urlsafe_b64encode(
        json.dumps({"after": getattr(rows[-1], key)}).encode()
    ).decode()
    query = {name: value for name, value in request.GET.items() if name != "cursor"}
    query["cursor"] = token
    return rows, request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
