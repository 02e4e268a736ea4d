"""Request promo images from the shell: the same request, estimate and service as the admin page."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.models import Product
from generation.forms import PromoRequestForm, providers_offline, usd
from generation.models import AssetStatus, ChannelPreset, GeneratedAsset, GenerationBatch, SizeTier
from generation.services import batch_create


class Command(BaseCommand):
    help = (
        "Generate promo images for products (by SKU, or every new product) in one or more "
        "channel presets. Prints the estimate, queues the batch, and with --wait follows it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--sku", nargs="+", metavar="SKU", help="The products' SKUs.")
        which.add_argument(
            "--new", action="store_true", help="Every product awaiting promo images."
        )
        parser.add_argument(
            "--preset",
            action="append",
            required=True,
            metavar="NAME",
            help="A channel preset's name; repeat for several.",
        )
        parser.add_argument("--size", default=SizeTier.ONE_K, help="Size tier (default: 1K).")
        parser.add_argument(
            "--references",
            type=int,
            default=settings.GENERATION_DEFAULT_REFERENCES,
            metavar="N",
            help="Reference bestsellers per image, 1 to 13 (default: 3).",
        )
        parser.add_argument(
            "--variants",
            type=int,
            default=1,
            metavar="N",
            help="Candidates per product and preset, 1 to 4 (default: 1).",
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="Record the batch as requested by this user."
        )
        parser.add_argument(
            "--wait", action="store_true", help="Follow the batch until it is done."
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=1800,
            metavar="SECONDS",
            help="With --wait: give up (exit non-zero) after this long (default: 1800).",
        )

    def handle(self, *args, **options) -> None:
        products = self._products(options["sku"], options["new"])
        presets = self._presets(options["preset"])
        user = self._user(options["user"])
        form = PromoRequestForm(
            {
                "presets": [p.pk for p in presets],
                "size_tier": options["size"],
                "reference_count": options["references"],
                "variants": options["variants"],
            },
            products=products,
        )
        if not form.is_valid():
            raise CommandError(
                " ".join(str(error) for errors in form.errors.values() for error in errors)
            )

        offline = providers_offline()
        quote = form.quote(products, offline=offline)
        variants = f" × {options['variants']} variants" if options["variants"] > 1 else ""
        self.stdout.write(
            f"{quote.images} image(s): {len(products)} product(s) × {len(presets)} "
            f"preset(s){variants} at {options['size']}."
        )
        if offline:
            self.stdout.write(
                "Offline preview providers: no cost, images are local previews, not AI photos."
            )
        else:
            self.stdout.write(
                f"Estimated cost: {usd(quote.per_image)} per image, {usd(quote.total)} "
                f"in total ({quote.image_calls} image calls with {quote.input_images} "
                "input images, analyses and quality checks)."
            )

        batch = batch_create(
            user=user, request=form.batch_request(products), estimated_cost=quote.total
        )
        self.stdout.write(f"Queued batch {batch.pk}.")
        if options["wait"]:
            self._wait(batch, options["timeout"])
        self._print_table(batch)
        failed = batch.assets.filter(status=AssetStatus.FAILED).count()
        if failed:
            raise CommandError(f"{failed} of {quote.images} image(s) failed; see the table above.")

    def _products(self, skus: list[str] | None, new: bool) -> list[Product]:
        if new:
            products = list(Product.objects.awaiting_promos().with_photo().order_by("sku"))
            if not products:
                raise CommandError("No new product with a photo is awaiting promo images.")
            return products
        found = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
        unknown = [sku for sku in skus if sku not in found]
        if unknown:
            raise CommandError(f"Unknown SKU(s): {', '.join(unknown)}.")
        no_photo = [sku for sku in skus if not found[sku].has_photo]
        if no_photo:
            raise CommandError(f"No photo to start from for: {', '.join(no_photo)}.")
        return [found[sku] for sku in dict.fromkeys(skus)]  # in the given order, once each

    def _presets(self, names: list[str]) -> list[ChannelPreset]:
        active = {p.name: p for p in ChannelPreset.objects.filter(is_active=True)}
        for name in names:
            if name not in active:
                raise CommandError(
                    f"Unknown or inactive preset {name!r}. Available presets: "
                    + ", ".join(repr(n) for n in sorted(active))
                    + "."
                )
        return [active[name] for name in dict.fromkeys(names)]

    def _user(self, username: str | None):
        if username is None:
            if settings.REVIEW_FOUR_EYES:
                raise CommandError(
                    "REVIEW_FOUR_EYES is on: name who requests the batch with "
                    "--user USERNAME, so that they cannot approve its images."
                )
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user {username!r}.")
        if not user.has_perm("generation.request_promos"):
            raise CommandError(
                f"{username} may not request promo images (generation.request_promos)."
            )
        return user

    def _wait(self, batch: GenerationBatch, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            progress = batch.progress()
            line = (
                f"{progress.finished}/{progress.total} finished, {progress.failed} failed, "
                f"cost so far {usd(progress.cost)}"
            )
            if line != last:  # one line per change, not one per second
                self.stdout.write(line)
                last = line
            if progress.running == 0:
                return
            if time.monotonic() >= deadline:
                self._print_table(batch)
                raise CommandError(
                    f"Timed out after {timeout:g} s with {progress.running} image(s) "
                    f"still running; batch {batch.pk} goes on in the background."
                )
            time.sleep(1)

    def _print_table(self, batch: GenerationBatch) -> None:
        assets = batch.assets.select_related("product", "preset").order_by(
            "product__sku", "preset__name", "variant"
        )
        rows = [("SKU", "Preset", "Version", "Status", "W×H", "Cost", "Image or failure reason")]
        rows += [
            (
                a.product.sku,
                a.preset.name,
                f"v{a.version}" + (f".{a.variant}" if batch.variants > 1 else ""),
                a.get_status_display(),
                f"{a.width}×{a.height}" if a.width else "—",
                usd(a.cost),
                _outcome(a),
            )
            for a in assets
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            padded = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
            self.stdout.write(padded + "  " + row[-1])  # the last column is not padded


def _outcome(asset: GeneratedAsset) -> str:
    if asset.image:
        try:
            return asset.image.path
        except NotImplementedError:  # remote storage (S3): the key is the address
            return asset.image.name
    return asset.failure_reason or asset.last_error or "—"
