"""Who is calling the API and what they may do.

A request carries `Authorization: Bearer <token>` (no session, so a browser's cookies open
nothing here and there is no CSRF to guard). The token must be active and its owner active;
each endpoint then asks for a scope of the token *and* the Django permissions its owner needs,
so a token never does more than the person it acts for. Each token has a rate limit, and each
address one for calls with a wrong token (API_FAILED_AUTH_PER_MINUTE: past it the address is
refused with 429 before any token is looked up, until its minute ends). Both are counted in
the "api" cache (Redis when the task broker is Redis, shared by every process); when that
Redis cannot be reached the call goes ahead uncounted (logged), as a limit must not take the
API down with it.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches
from ninja.security import HttpBearer

from core.addresses import client_address
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
        address = client_address(request)
        limit = settings.API_FAILED_AUTH_PER_MINUTE
        if _count(f"api-auth-failed:{address}", add=0) >= limit:
            raise _rate_limited(f"This address sent more than {limit} wrong tokens this minute")
        found = api_token_find(token)
        if found is None:
            _count(f"api-auth-failed:{address}")
            logger.warning("API call with an unknown or revoked token from %s", address)
            return None
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if _count(f"api-rate:{found.pk}") > limit:
            raise _rate_limited(f"This token made more than {limit} calls this minute")
        return found


def _count(name: str, add: int = 1) -> int:
    """Add `add` to the count of `name` in the current minute and return it (0 when the cache
    cannot be reached: the call goes ahead uncounted, as paid calls do)."""
    key = f"{name}:{int(time.time() // WINDOW_SECONDS)}"
    cache = caches["api"]
    try:
        if not add:
            return cache.get(key) or 0
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            return cache.incr(key, add)
        except ValueError:  # expired between add and incr
            cache.set(key, add, timeout=WINDOW_SECONDS * 2)
            return add
    except Exception as exc:
        logger.warning("API rate limit not counted (%s): %s goes ahead", exc, name)
        return 0


def _rate_limited(reason: str) -> ApiProblem:
    """A 429 saying when the current minute ends."""
    now = time.time()
    retry = max(1, int((now // WINDOW_SECONDS + 1) * WINDOW_SECONDS - now) + 1)
    return ApiProblem(
        429,
        f"{reason}; try again in {retry} s.",
        "rate-limited",
        headers={"Retry-After": str(retry)},
    )


def require(request, scope: str, *permissions: str) -> ApiToken:
    """The calling token, when it has `scope` and its owner every one of `permissions`;
    otherwise a 403 naming what is missing."""
    token: ApiToken = request.auth
    if scope not in token.scopes:
        # str(): a scope's repr is ApiScope.FEED_READ, not the 'feed:read' clients know
        raise ApiProblem(403, f"This token lacks the scope {str(scope)!r}.", "missing-scope")
    missing = [perm for perm in permissions if not token.owner.has_perm(perm)]
    if missing:
        raise ApiProblem(
            403,
            f"The token's owner {token.owner.get_username()!r} lacks the permission "
            f"{', '.join(missing)}; a token never does more than its owner.",
            "missing-permission",
        )
    return token
