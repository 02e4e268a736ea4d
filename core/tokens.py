"""Bearer tokens stored as a hash: the helpers the feed tokens (generation.FeedToken) and the
API tokens (core.ApiToken) share.

A token is a marker ("feed_", "api_") and 32 random bytes. Only its SHA-256 is stored: 256
random bits cannot be guessed, so a fast unsalted hash is enough, and it lets a request find
its token in one indexed lookup. The prefix (the marker and a few characters) tells tokens
apart in lists and logs without being secret enough to matter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.db.models import Model, Q, QuerySet

PREFIX_CHARS = 8  # "feed_" and 3 characters of the secret: enough to tell tokens apart
# A request records the token's last use, but at most this often per token: a client that
# calls every second writes once a minute, not every second.
USED_EVERY = timedelta(minutes=1)


def token_hash(secret: str | bytes) -> str:
    """The SHA-256 of a token, as stored."""
    raw = secret.encode("ascii") if isinstance(secret, str) else secret
    return hashlib.sha256(raw).hexdigest()


def token_new(marker: str) -> tuple[str, str, str]:
    """A fresh secret with its hash and prefix: (secret, hash, prefix). The secret exists in
    clear only in the caller, which shows it once."""
    secret = marker + secrets.token_urlsafe(32)
    return secret, token_hash(secret), secret[: max(PREFIX_CHARS, len(marker) + 3)]


def active(queryset: QuerySet, now: datetime) -> QuerySet:
    """The tokens of `queryset` that work now: not revoked, not expired."""
    return queryset.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def token_find(queryset: QuerySet, secret: str | bytes, now: datetime) -> Model | None:
    """The active token of `queryset` with this secret (found by its hash, then compared in
    constant time), its use recorded; None when there is none."""
    digest = token_hash(secret)
    token = active(queryset, now).filter(token_hash=digest).first()
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    record_use(token, now)
    return token


def record_use(token: Model, now: datetime) -> None:
    """One conditional UPDATE when the last recorded use is a minute old, none otherwise."""
    if token.last_used_at is not None and now - token.last_used_at < USED_EVERY:
        return
    type(token).objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - USED_EVERY)
    ).update(last_used_at=now)
    token.last_used_at = now
