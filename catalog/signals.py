"""Catalog edits reach the vector index by themselves: receivers only schedule the work."""

from catalog.models import changes_index
from catalog.services import products_schedule_sync
from catalog.tasks import remove_products
from core.queue import enqueue_after_commit


def product_saved(sender, instance, update_fields=None, **kwargs):
    if changes_index(update_fields):
        products_schedule_sync(product_ids=[instance.pk])


def product_deleted(sender, instance, **kwargs):
    enqueue_after_commit(remove_products, [instance.pk])
