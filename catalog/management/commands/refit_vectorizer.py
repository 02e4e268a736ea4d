from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Fit a new TF-IDF vocabulary on the catalog and rebuild the index with it "
        "(same as reindex --refit)."
    )

    def handle(self, *args, **options):
        call_command(
            "reindex",
            refit=True,
            verbosity=options["verbosity"],
            stdout=self.stdout._out,
            stderr=self.stderr._out,
        )
