"""Feed tokens: made in the admin (or by `manage.py create_feed_token`), shown once, stored
as a hash, checked by the published feed, revoked without being deleted.

The feed also still accepts the tokens of the FEED_TOKENS setting, the way it did before
tokens lived in the database (deprecated: make tokens in the admin instead).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from generation.models import FeedToken

# Every token starts with this, so a leaked one is easy to recognise (e.g. by secret scanners).
MARKER = "feed_"
PREFIX_CHARS = 8  # the marker and 3 characters of the secret: enough to tell tokens apart
# Reading the feed records the time, but at most this often per token: a channel that polls
# every second writes once a minute, not every second.
USED_EVERY = timedelta(minutes=1)


def token_hash(secret: str | bytes) -> str:
    """The SHA-256 of a token, as stored (see FeedToken's docstring for why SHA-256)."""
    raw = secret.encode("ascii") if isinstance(secret, str) else secret
    return hashlib.sha256(raw).hexdigest()


def feed_token_issue(*, token: FeedToken, user=None) -> str:
    """Give a new, unsaved token its secret and save it; return the secret, which exists in
    clear only here: the caller shows it once and it is never stored."""
    secret = MARKER + secrets.token_urlsafe(32)
    token.token_hash = token_hash(secret)
    token.prefix = secret[:PREFIX_CHARS]
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
    now = now or timezone.now()
    return FeedToken.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def feed_token_check(secret: bytes) -> bool:
    """Whether a bearer token opens the feed: an active token of the database (found by its
    hash, then compared in constant time), or one of FEED_TOKENS (compared in constant time
    with each). A token that opens it records when it was used."""
    digest = token_hash(secret)
    now = timezone.now()
    token = active_tokens(now).filter(token_hash=digest).first()
    if token is not None and hmac.compare_digest(token.token_hash, digest):
        _record_use(token, now)
        return True
    return any(hmac.compare_digest(secret, known.encode()) for known in settings.FEED_TOKENS)


def _record_use(token: FeedToken, now: datetime) -> None:
    """One conditional UPDATE when the last recorded use is a minute old, none otherwise."""
    if token.last_used_at is not None and now - token.last_used_at < USED_EVERY:
        return
    FeedToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - USED_EVERY)
    ).update(last_used_at=now)
