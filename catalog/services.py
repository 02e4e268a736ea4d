"""Writes to the catalog (the CSV import lives in catalog.importer)."""

from django.db import transaction
from django.utils import timezone

from catalog.images import PreparedImage, image_store
from catalog.models import Product


def product_set_image(*, product: Product, image: PreparedImage) -> None:
    """Store a prepared photo and its thumbnail and point the product at them (not saved)."""
    image_store(image)
    # Plain names, not file objects: assigning to .name would leave an upload attached,
    # and Model.save() would store the raw upload again under another name.
    product.image = image.storage_name
    product.thumbnail = image.thumbnail_name
    product.image_sha256 = image.sha256
    product.image_width, product.image_height = image.width, image.height


def product_save(
    *, product: Product, image: PreparedImage | None = None, sales_changed: bool = False
) -> Product:
    """Save a product edited by a person, with its new photo if one was uploaded."""
    if image is not None:
        product_set_image(product=product, image=image)
    if sales_changed or product.pk is None:
        product.sales_updated_at = timezone.now()
    with transaction.atomic():
        product.save()
    return product
