"""Register a webhook endpoint from the shell: its signing secret is printed once, alone on the
last line, so `... | tail -n 1` captures it."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from hooks.endpoints import EndpointRefused, endpoint_create
from hooks.models import EventType


class Command(BaseCommand):
    help = (
        "Register a URL that receives signed webhooks (Standard Webhooks: webhook-id, "
        "webhook-timestamp, webhook-signature) for the events given. The signing secret "
        "(whsec_…) is shown only now, on the last line; the receiver verifies every webhook "
        "with it."
    )

    def add_arguments(self, parser):
        parser.add_argument("url", help="where to POST the events (http or https)")
        parser.add_argument(
            "--event",
            action="append",
            required=True,
            choices=EventType.values,
            dest="events",
            help="an event to send (repeat for more)",
        )
        parser.add_argument("--owner", help="username mailed if the endpoint is disabled")
        parser.add_argument("--description", default="", help="who or what receives it")

    def handle(self, *args, url, events, owner, description, **options):
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"There is no user {owner!r}.")
        try:
            endpoint, secret = endpoint_create(
                url=url, events=events, owner=user, description=description
            )
        except EndpointRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Added webhook endpoint {endpoint.pk} for {endpoint.url} "
            f"({', '.join(endpoint.events)}). Its signing secret is shown only now:"
        )
        self.stdout.write(secret)
