"""Catalog edits reach the vector index by themselves: receivers only schedule the work."""

from catalog.models import INDEX_BOOKKEEPING_FIELDS
from catalog.tasks import enqueue_after_commit, remove_products, sync_products


def product_saved(sender, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= INDEX_BOOKKEEPING_FIELDS:
        return
    enqueue_after_commit(sync_products, [instance.pk])


def product_deleted(sender, instance, **kwargs):
    enqueue_after_commit(remove_products, [instance.pk])
