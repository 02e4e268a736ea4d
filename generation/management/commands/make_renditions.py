"""Make the list and review renditions of generated images stored before they existed."""

from django.core.management.base import BaseCommand

from generation.models import GeneratedAsset
from generation.renditions import renditions_make


class Command(BaseCommand):
    help = "Make the thumbnail and preview of every generated image that lacks them."

    def handle(self, *args, **options):
        made = 0
        for asset in GeneratedAsset.objects.exclude(image="").filter(thumbnail="").iterator():
            with asset.image.open("rb") as handle:
                names = renditions_make(asset, handle.read())
            GeneratedAsset.objects.filter(pk=asset.pk).update(**names)
            made += 1
        self.stdout.write(f"Made the renditions of {made} image(s).")
