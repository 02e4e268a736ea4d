"""Create a login with its role in one step: staff status and the role's group together."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

ROLES = {"merchandiser": "Merchandiser", "reviewer": "Reviewer"}


class Command(BaseCommand):
    help = (
        "Create a user who can log in to the admin with a role: merchandiser (products, "
        "imports, promo requests) or reviewer (approve, reject, regenerate, publish). "
        "Prints a generated password unless --password is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            required=True,
            action="append",
            choices=sorted(ROLES),
            help="repeat for both roles",
        )
        parser.add_argument(
            "--email", default="", help="where rejections of their batches are mailed"
        )
        parser.add_argument("--password", help="the password (default: a generated one, printed)")

    def handle(self, *args, username, role, email, password, **options):
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            raise CommandError(
                f"A user {username!r} exists already; change their groups in the admin."
            )
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        user = users.objects.create_user(username, email, password, is_staff=True)
        user.groups.set(Group.objects.filter(name__in=[ROLES[name] for name in role]))
        roles = " and ".join(ROLES[name] for name in role)
        self.stdout.write(self.style.SUCCESS(f"Created {username} ({roles})."))
        if generated:
            self.stdout.write(f"Password: {password}")
