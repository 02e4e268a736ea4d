"""Make a feed token from the shell, e.g. for a deployment script: the token is printed once,
alone on the last line, so `... | tail -n 1` captures it."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from generation.feed_tokens import feed_token_create


class Command(BaseCommand):
    help = (
        "Make a token a channel upload sends (Authorization: Bearer <token>) to read "
        "/feeds/published.csv or .json. The token is shown only now, on the last line; "
        "revoke it in the admin under Feeds."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="who or what uses it, e.g. 'Marketplace upload'")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            help="the token stops working after this many days (default: never)",
        )

    def handle(self, *args, name, expires_in_days, **options):
        if not name.strip():
            raise CommandError("Give the token a name that says who uses it.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        token, secret = feed_token_create(name=name.strip(), expires_at=expires_at)
        until = f"until {token.expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "until revoked"
        self.stdout.write(
            f"Made the feed token “{token.name}” ({token.prefix}…), valid {until}. "
            "It is shown only now:"
        )
        self.stdout.write(secret)
