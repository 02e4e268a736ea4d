"""Make an API token from the shell, e.g. for a deployment script: the token is printed once,
alone on the last line, so `... | tail -n 1` captures it."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.api_tokens import ScopeError, api_token_create
from core.models import ApiScope


class Command(BaseCommand):
    help = (
        "Make a token a system sends to /api/v1/ (Authorization: Bearer <token>). It acts as "
        "--user and never beyond that user's permissions. The token is shown only now, on the "
        "last line; revoke it in the admin under API tokens."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="who or what uses it, e.g. 'PIM nightly sync'")
        parser.add_argument("--user", required=True, help="the user the token acts as")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            choices=ApiScope.values,
            help="what it may do; repeat for several",
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            help="the token stops working after this many days (default: never)",
        )

    def handle(self, *args, name, user, scope, expires_in_days, **options):
        if not name.strip():
            raise CommandError("Give the token a name that says who uses it.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user!r}: make it first (manage.py create_user).")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            token, secret = api_token_create(
                name=name.strip(), owner=owner, scopes=scope, expires_at=expires_at
            )
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        until = f"until {token.expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "until revoked"
        self.stdout.write(
            f"Made the API token “{token.name}” ({token.prefix}…) for {owner.get_username()} "
            f"with {', '.join(token.scopes)}, valid {until}. It is shown only now:"
        )
        self.stdout.write(secret)
