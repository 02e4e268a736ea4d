"""Feed tokens: made in the admin (or by `manage.py create_feed_token`), shown once, stored
as a hash (core.tokens, shared with the API tokens), checked by the published feed, revoked
without being deleted.

The feed also still accepts the tokens of the FEED_TOKENS setting, the way it did before
tokens lived in the database (deprecated: make tokens in the admin instead).
"""

from __future__ import annotations

import hmac
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from core.tokens import active, token_find, token_new
from generation.models import FeedToken

# Every token starts with this, so a leaked one is easy to recognise (e.g. by secret scanners).
MARKER = "feed_"


def feed_token_issue(*, token: FeedToken, user=None) -> str:
    """Give a new, unsaved token its secret and save it; return the secret, which exists in
    clear only here: the caller shows it once and it is never stored."""
    secret, token.token_hash, token.prefix = token_new(MARKER)
    token.created_by = user if user is not None and user.is_authenticated else None
    token.save()
    return secret


def feed_token_create(
    *, name: str, user=None, expires_at: datetime | None = None
) -> tuple[FeedToken, str]:
    """A new token and its secret (shown once)."""
    token = FeedToken(name=name, expires_at=expires_at)
    return token, feed_token_issue(token=token, user=user)


def feed_token_revoke(*, token: FeedToken, user=None) -> bool:
    """Stop a token at once, keeping its row; False when it was revoked already."""
    revoked = FeedToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=user
    )
    token.refresh_from_db()
    return bool(revoked)


def active_tokens(now: datetime | None = None) -> QuerySet[FeedToken]:
    """Tokens that open the feed now: not revoked, not expired."""
    return active(FeedToken.objects.all(), now or timezone.now())


def feed_token_check(secret: bytes) -> bool:
    """Whether a bearer token opens the feed: an active token of the database (found by its
    hash, then compared in constant time), or one of FEED_TOKENS (compared in constant time
    with each). A token that opens it records when it was used."""
    if token_find(FeedToken.objects.all(), secret, timezone.now()) is not None:
        return True
    return any(hmac.compare_digest(secret, known.encode()) for known in settings.FEED_TOKENS)
