"""Login lockout: django-axes with two limits where axes has one.

Axes records every failed login in the database (AccessAttempt, shown in the admin under
"Axes") and logs it. It compares one figure with AXES_FAILURE_LIMIT: here the failures of
one username from one address (LOGIN_FAILURES_PER_USER), so a person who mistypes locks
only themselves, and a colleague at the next desk still gets in. An address gets a second,
higher limit over every username it tries (LOGIN_FAILURES_PER_ADDRESS): a guesser who walks
through usernames is stopped too. Both expire LOGIN_COOLOFF_MINUTES after the last failure,
or when an administrator deletes the attempts (the admin's Axes pages, or
`manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS` / `axes_reset`).

Axes stores what the client sent (username, User-Agent, Accept) as it came; PostgreSQL refuses
a NUL character and a username over its column's 255 characters, and the login form lets both
through to axes. Here they are made storable first, so a hostile login is a refused login, not
a 500.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum

COLUMN_LENGTH = 255  # axes' username and user_agent columns


def storable(text: str) -> str:
    return text.replace("\x00", "\ufffd")[:COLUMN_LENGTH]


def attempt_username(request, credentials: dict | None) -> str | None:
    """The username axes records and counts by (AXES_USERNAME_CALLABLE): as typed, storable."""
    source = credentials or getattr(request, "data", request.POST)
    username = source.get(settings.AXES_USERNAME_FORM_FIELD)
    return None if username is None else storable(str(username))


def _storable_request(request) -> None:
    """The client's headers as axes put them on the request, storable (see the docstring)."""
    for name in ("axes_user_agent", "axes_http_accept", "axes_path_info"):
        if isinstance(getattr(request, name, None), str):
            setattr(request, name, getattr(request, name).replace("\x00", "\ufffd"))


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler; an address past its own limit counts as at the user limit, and
    what it records is storable."""

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        _storable_request(request)
        return super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender, request, user, **kwargs):
        _storable_request(request)
        return super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        _storable_request(request)
        return super().user_logged_out(sender, request, user, **kwargs)

    def get_failures(self, request, credentials: dict | None = None) -> int:
        # One queryset per entry of AXES_LOCKOUT_PARAMETERS: (username, address), then address.
        by_user, by_address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if by_address >= settings.LOGIN_FAILURES_PER_ADDRESS:
            return max(by_user, settings.AXES_FAILURE_LIMIT)
        return by_user
