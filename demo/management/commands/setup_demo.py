import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.importer import DirectoryImages, catalog_import
from catalog.models import Product
from demo.sample import write_sample_catalog

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Prepare a local demo: an admin login (printed) and, when the catalog is empty, the "
        "sample catalog imported. Safe to run on every start."
    )

    def handle(self, *args, **options):
        password_file = settings.VAR_DIR / "admin-password.txt"
        self._ensure_admin(password_file)
        if Product.objects.exists():
            self.stdout.write(f"Catalog has {Product.objects.count()} products; sample not loaded.")
        else:
            self._load_sample(settings.VAR_DIR / "sample-catalog")
        password = password_file.read_text().strip() if password_file.exists() else "(unknown)"
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Admin: http://127.0.0.1:8000/admin/\n"
                f"  Login: {ADMIN_USERNAME} / {password}\n"
                f"  (the password was generated on first run and saved in {password_file})\n"
            )
        )

    def _ensure_admin(self, password_file: Path) -> None:
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)

    def _load_sample(self, folder: Path) -> None:
        write_sample_catalog(folder)
        for csv_name, images in (("products.csv", "images"), ("new_products.csv", "new_products")):
            # The broker is not running yet: the scheduler's minute job indexes the sample.
            result = catalog_import(
                csv_data=(folder / csv_name).read_bytes(),
                images=DirectoryImages(folder / images),
                sync_index=False,
            )
            if not result.ok:
                raise CommandError(
                    f"sample {csv_name} failed to import: " + "; ".join(map(str, result.errors))
                )
            self.stdout.write(f"Imported sample {csv_name}: {result.summary()}")
