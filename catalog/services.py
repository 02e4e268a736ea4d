"""Writes to the catalog and the index work they schedule (the CSV import lives in
catalog.importer, the index work itself in catalog.indexing)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from catalog.images import ImageRef, PreparedImage, image_store
from catalog.indexing import SYNC_CHUNK, chunks
from catalog.models import Product
from catalog.tasks import rebuild_index, sync_products
from core.queue import enqueue_after_commit


def product_use_image(*, product: Product, image: ImageRef) -> None:
    """Point the product at a prepared photo and its thumbnail (neither stored nor saved)."""
    # Plain names, not file objects: assigning to .name would leave an upload attached,
    # and Model.save() would store the raw upload again under another name.
    product.image = image.storage_name
    product.thumbnail = image.thumbnail_name
    product.image_sha256 = image.sha256
    product.image_width, product.image_height = image.width, image.height


def product_set_image(*, product: Product, image: PreparedImage) -> None:
    """Store a prepared photo and its thumbnail and point the product at them (not saved)."""
    image_store(image)
    product_use_image(product=product, image=image)


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


def products_schedule_sync(*, product_ids: list[int], refit: bool = False) -> None:
    """After the current transaction commits, queue the index work for these products.

    With refit, a full rebuild with a new TF-IDF vocabulary replaces the per-product syncs.
    """
    if refit:
        enqueue_after_commit(rebuild_index, True)
        return
    for chunk in chunks(product_ids, SYNC_CHUNK):
        enqueue_after_commit(sync_products, chunk)


def products_resync(*, product_ids: list[int]) -> None:
    """Mark the products pending and queue their index sync (the admin's re-sync action)."""
    with transaction.atomic():
        Product.objects.filter(pk__in=product_ids).mark_index_pending()
        products_schedule_sync(product_ids=product_ids)


def product_set_published(*, product_id: int, published: bool) -> None:
    """A new product moves to "has published images" with its first published image, and back
    when its last one is unpublished. Historical listings keep their lifecycle. (The lifecycle
    is not in the vector index: an update without save() leaves the index alone.)"""
    before, after = (
        (Product.Lifecycle.NEW, Product.Lifecycle.PUBLISHED)
        if published
        else (Product.Lifecycle.PUBLISHED, Product.Lifecycle.NEW)
    )
    Product.objects.filter(pk=product_id, lifecycle=before).update(lifecycle=after)
