"""API tokens: made in the admin or by `manage.py create_api_token`, shown once, stored as a
hash (core.tokens), found by the API's bearer authentication, revoked without being deleted."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from core.models import ApiScope, ApiToken
from core.tokens import token_find, token_new

# Every token starts with this, so a leaked one is easy to recognise (e.g. by secret scanners).
MARKER = "api_"


class ScopeError(ValueError):
    pass


def scopes_clean(scopes: list[str]) -> list[str]:
    """The scopes in a stable order; ScopeError names any that does not exist."""
    unknown = [scope for scope in scopes if scope not in ApiScope.values]
    if unknown:
        raise ScopeError(
            f"unknown scope {', '.join(map(repr, unknown))}; the scopes are "
            + ", ".join(ApiScope.values)
        )
    return [scope for scope in ApiScope.values if scope in scopes]


def api_token_issue(*, token: ApiToken) -> str:
    """Give a new, unsaved token its secret and save it; return the secret, which exists in
    clear only here: the caller shows it once and it is never stored."""
    token.scopes = scopes_clean(token.scopes)
    secret, token.token_hash, token.prefix = token_new(MARKER)
    token.save()
    return secret


def api_token_create(
    *, name: str, owner, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token and its secret (shown once)."""
    token = ApiToken(name=name, owner=owner, scopes=scopes, expires_at=expires_at)
    return token, api_token_issue(token=token)


def api_token_revoke(*, token: ApiToken) -> bool:
    """Stop a token at once, keeping its row; False when it was revoked already."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db()
    return bool(revoked)


def api_token_find(secret: str) -> ApiToken | None:
    """The active token with this secret, whose owner is still active; None otherwise."""
    token = token_find(
        ApiToken.objects.select_related("owner"), secret.encode("ascii", "replace"), timezone.now()
    )
    if token is None or not token.owner.is_active:
        return None
    return token
