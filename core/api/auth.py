"""Who is calling the API and what they may do.

A request carries `Authorization: Bearer <token>` (no session, so a browser's cookies open
nothing here and there is no CSRF to guard). The token must be active and its owner active;
each endpoint then asks for a scope of the token *and* the Django permissions its owner needs,
so a token never does more than the person it acts for. Each token has a rate limit, counted
in the "api" cache (Redis when the task broker is Redis, shared by every process); when that
Redis cannot be reached the call goes ahead uncounted (logged), as a limit must not take the
API down with it.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches
from ninja.security import HttpBearer

from core.api.problems import ApiProblem
from core.api_tokens import api_token_find
from core.models import ApiToken

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class TokenAuth(HttpBearer):
    """The API's only authentication. Also refuses an oversized body (413) before it is read,
    and a token past its rate limit (429)."""

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isascii() and length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            raise ApiProblem(
                413,
                f"The request body is {int(length):,} bytes; the limit is "
                f"{settings.API_MAX_BODY_BYTES:,}. Send fewer items per call.",
                "too-large",
            )
        return super().__call__(request)

    def authenticate(self, request, token: str) -> ApiToken | None:
        found = api_token_find(token)
        if found is not None:
            rate_limit(found)
        return found


def rate_limit(token: ApiToken) -> None:
    """Count the call in the token's current minute; past API_RATE_LIMIT_PER_MINUTE, a 429
    saying when the minute ends."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"api-rate:{token.pk}:{window}"
    cache = caches["api"]
    try:
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            calls = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS * 2)
            calls = 1
    except Exception as exc:  # Redis away: the call goes ahead uncounted, as paid calls do
        logger.warning("API rate limit not counted (%s): token %s goes ahead", exc, token.pk)
        return
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if calls > limit:
        retry = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
        raise ApiProblem(
            429,
            f"This token made more than {limit} calls this minute; try again in {retry} s.",
            "rate-limited",
            headers={"Retry-After": str(retry)},
        )


def require(request, scope: str, *permissions: str) -> ApiToken:
    """The calling token, when it has `scope` and its owner every one of `permissions`;
    otherwise a 403 naming what is missing."""
    token: ApiToken = request.auth
    if scope not in token.scopes:
        raise ApiProblem(403, f"This token lacks the scope {scope!r}.", "missing-scope")
    missing = [perm for perm in permissions if not token.owner.has_perm(perm)]
    if missing:
        raise ApiProblem(
            403,
            f"The token's owner {token.owner.get_username()!r} lacks the permission "
            f"{', '.join(missing)}; a token never does more than its owner.",
            "missing-permission",
        )
    return token
