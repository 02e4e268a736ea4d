"""Dramatiq actors for the vector index: thin, idempotent, ids in (the work is in indexing).

Who retries what is written once, in core.openrouter's docstring.
"""

import logging

import dramatiq

from catalog import indexing
from catalog.vector_index import IndexUnavailable
from core.openrouter import ProviderError
from core.queue import retry_message
from core.spending import SpendingCapReached

logger = logging.getLogger(__name__)


def _index_work(work, **arguments) -> None:
    """Run index work; a transient failure comes back later (after Retry-After when given)."""
    try:
        work(**arguments)
    except IndexUnavailable as exc:
        raise retry_message(str(exc), delay=None) from exc
    except ProviderError as exc:
        if not exc.retryable:
            logger.warning("index work failed for good: %s", exc)  # shown on the products
            return
        raise retry_message(str(exc), delay=exc.retry_after) from exc
    except SpendingCapReached as exc:  # shown on the products; the next month resumes
        logger.warning("index work stopped: %s", exc)


# Milvus being down is worth a few patient retries; the reconcile actor covers longer outages.
@dramatiq.actor(queue_name="index", max_retries=5, min_backoff=2_000, max_backoff=120_000)
def sync_products(product_ids: list[int]) -> None:
    _index_work(indexing.products_sync, product_ids=product_ids)


@dramatiq.actor(queue_name="index", max_retries=5, min_backoff=2_000, max_backoff=120_000)
def remove_products(product_ids: list[int]) -> None:
    _index_work(indexing.products_remove, product_ids=product_ids)


@dramatiq.actor(queue_name="index", max_retries=2, time_limit=3_600_000)
def rebuild_index(refit: bool = False) -> None:
    indexing.index_rebuild(refit=refit)
