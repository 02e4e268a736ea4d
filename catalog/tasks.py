"""Dramatiq actors for the vector index: thin, idempotent, ids in (the work is in indexing)."""

import logging

import dramatiq
from django.db import transaction

from catalog import indexing

logger = logging.getLogger(__name__)


def enqueue_after_commit(actor: dramatiq.Actor, *args) -> None:
    """Send a message once the current transaction commits; never inside it.

    A rolled back transaction sends nothing. If the broker is down the commit still stands:
    the failure is logged and the periodic reconcile catches the index up later.
    """
    def send():
        try:
            actor.send(*args)
        except Exception as exc:  # noqa: BLE001 - redis down, network: the commit must stand
            logger.warning("could not queue %s (%s); the periodic reconcile will catch up",
                           actor.actor_name, exc)

    transaction.on_commit(send)


# Milvus being down is worth a few patient retries; the reconcile actor covers longer outages.
@dramatiq.actor(queue_name="index", max_retries=5, min_backoff=2_000, max_backoff=120_000)
def sync_products(product_ids: list[int]) -> None:
    indexing.products_sync(product_ids=product_ids)


@dramatiq.actor(queue_name="index", max_retries=5, min_backoff=2_000, max_backoff=120_000)
def remove_products(product_ids: list[int]) -> None:
    indexing.products_remove(product_ids=product_ids)


@dramatiq.actor(queue_name="index", max_retries=2, time_limit=3_600_000)
def rebuild_index(refit: bool = False) -> None:
    indexing.index_rebuild(refit=refit)


@dramatiq.actor(queue_name="index", max_retries=0, time_limit=1_800_000)
def reconcile_index() -> None:
    drift = indexing.index_check(repair=True)
    if drift.total:
        logger.info("reconcile repaired %s rows (%s missing, %s stale, %s orphaned)", drift.total,
                    len(drift.missing), len(drift.stale), len(drift.orphaned))
