from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Product
from demo.history import HistoryError, published_in_the_past
from demo.management.commands.setup_demo import ADMIN_USERNAME
from generation.models import ChannelPreset


class Command(BaseCommand):
    help = (
        "Demo only: make, approve and publish an image of each given product on a channel "
        "preset with the offline providers (nothing paid), then move each publication DAYS "
        "back in its status log (and say so there), so that `make_sample_performance` has "
        "days to report. Never on a real catalog."
    )

    def add_arguments(self, parser):
        parser.add_argument("skus", nargs="+", metavar="SKU", help="the products")
        parser.add_argument("--preset", required=True, metavar="NAME")
        parser.add_argument("--days", type=int, default=31, help="how many days back (31)")
        parser.add_argument(
            "--user", default=ADMIN_USERNAME, help="who approves and publishes (the demo admin)"
        )

    def handle(self, *args, skus, preset, days, user, **options):
        products = list(Product.objects.filter(sku__in=skus).order_by("sku"))
        missing = sorted(set(skus) - {p.sku for p in products})
        if missing:
            raise CommandError(f"Unknown SKU(s): {', '.join(missing)}")
        channel = ChannelPreset.objects.filter(name=preset, is_active=True).first()
        if channel is None:
            raise CommandError(f"Unknown or inactive preset {preset!r}.")
        publisher = get_user_model().objects.filter(username=user).first()
        if publisher is None:
            raise CommandError(f"Unknown user {user!r}.")
        if days < 1:
            raise CommandError("--days must be at least 1.")
        try:
            assets = published_in_the_past(
                products=products, preset=channel, user=publisher, days=days
            )
        except HistoryError as exc:
            raise CommandError(str(exc)) from None
        for asset in assets:
            self.stdout.write(f"{asset.product.sku}: image {asset.pk}, published {days} days ago")
