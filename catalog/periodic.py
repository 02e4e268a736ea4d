"""The catalog's periodic jobs, sent by the scheduler (`manage.py crontab`, dramatiq-crontab)
and registered when the app is ready, so the worker and the scheduler both know them."""

import logging

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron, interval

from catalog import indexing
from catalog.importer import jobs
from catalog.models import CatalogImport
from catalog.staging import staging_purge_stale

logger = logging.getLogger(__name__)


@interval(seconds=settings.INDEX_RECONCILE_INTERVAL_SECONDS)
@dramatiq.actor(queue_name="index", max_retries=0, time_limit=1_800_000)
def reconcile_index() -> None:
    """Compare Milvus with the database and repair every difference."""
    drift = indexing.index_check(repair=True)
    if drift.total:
        logger.info(
            "reconcile repaired %s rows (%s missing, %s stale, %s orphaned)",
            drift.total,
            len(drift.missing),
            len(drift.stale),
            len(drift.orphaned),
        )


@interval(seconds=60)
@dramatiq.actor(queue_name="index", max_retries=0)
def sync_waiting_products() -> None:
    """Index products whose sync message never came (broker down, sample loaded at setup)."""
    indexing.products_sync_waiting()


@interval(seconds=settings.INDEX_FLUSH_INTERVAL_SECONDS)
@dramatiq.actor(queue_name="index", max_retries=0)
def flush_index() -> None:
    """Flush what small syncs left in Milvus' memory, so searches stay fast after edits."""
    indexing.index_flush_due()


@cron("17 * * * *")
@dramatiq.actor(max_retries=0)
def purge_import_staging() -> None:
    """Remove uploads that no import is using any more (an import's own files go when it
    ends; an import checked and not confirmed within a day is dropped)."""
    jobs.imports_expire_unconfirmed()
    unfinished = CatalogImport.objects.exclude(state__in=CatalogImport.FINISHED)
    staging_purge_stale(keep=set(unfinished.values_list("token", flat=True)))


@interval(seconds=60)
@dramatiq.actor(queue_name="imports", max_retries=0)
def sweep_imports() -> None:
    """Send again the imports whose worker died or whose message was lost."""
    jobs.imports_requeue_stalled()
