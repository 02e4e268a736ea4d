"""Login lockout: django-axes with two limits where axes has one.

Axes records every failed login in the database (AccessAttempt, shown in the admin under
"Axes") and logs it. It compares one figure with AXES_FAILURE_LIMIT: here the failures of
one username from one address (LOGIN_FAILURES_PER_USER), so a person who mistypes locks
only themselves, and a colleague at the next desk still gets in. An address gets a second,
higher limit over every username it tries (LOGIN_FAILURES_PER_ADDRESS): a guesser who walks
through usernames is stopped too. Both expire LOGIN_COOLOFF_MINUTES after the last failure,
or when an administrator deletes the attempts (the admin's Axes pages, or
`manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS` / `axes_reset`).
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler; an address past its own limit counts as at the user limit."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        # One queryset per entry of AXES_LOCKOUT_PARAMETERS: (username, address), then address.
        by_user, by_address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if by_address >= settings.LOGIN_FAILURES_PER_ADDRESS:
            return max(by_user, settings.AXES_FAILURE_LIMIT)
        return by_user
