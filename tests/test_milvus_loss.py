"""Losing Milvus's data alone heals by itself: the database is the source of truth, and the
periodic reconcile (catalog.periodic.reconcile_index, every INDEX_RECONCILE_INTERVAL_SECONDS)
fills a new, empty Milvus from it. Nobody runs a command (docs/operations.md).

Real parts: a `milvus-lite server` process that is stopped, has its data directory deleted and
is started again on the same port; the scheduler's own job for the reconcile (dramatiq-crontab's
registration), sent the way the scheduler sends it; a real Dramatiq worker running it.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from dramatiq_crontab import scheduler

from catalog.indexing import get_index, index_check, index_rebuild
from catalog.models import IndexRun, IndexState, Product
from catalog.selectors import similar_bestsellers
from tests.factories import sample_catalog_import
from tests.milvus_server import MilvusLiteServer

# A worker thread runs the reconcile: it must see the test's rows, so they are committed.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def milvus_server(settings, tmp_path):
    """The app pointed at a milvus-lite server of its own, as in production (bin/run)."""
    server = MilvusLiteServer(tmp_path / "milvus").start()
    settings.MILVUS_URI = server.uri
    settings.MILVUS_TOKEN = ""
    settings.MILVUS_TIMEOUT = 5  # a stopped server fails the reconcile quickly
    settings.MILVUS_COLLECTION_PREFIX = "products"
    settings.MILVUS_DENSE_INDEX = "FLAT"
    settings.MILVUS_SINGLE_WRITER = True
    settings.MILVUS_WRITE_LOCK_FILE = tmp_path / "milvus-write.lock"
    yield server
    server.stop()


def reconcile_job():
    """The scheduler's job that sends the reconcile (registered by @interval at app start)."""
    [job] = [job for job in scheduler.get_jobs() if job.name == "reconcile_index"]
    return job


def test_the_reconcile_is_scheduled_every_index_reconcile_interval(settings):
    assert reconcile_job().trigger.interval == timedelta(
        seconds=settings.INDEX_RECONCILE_INTERVAL_SECONDS
    )


def test_milvus_data_lost_while_stopped_is_whole_again_at_the_next_reconcile(
    milvus_server, sample_catalog, broker, worker, settings, capsys
):
    sample_catalog_import(sample_catalog)
    index_rebuild()
    products = Product.objects.count()
    assert index_check().total == 0
    lost_collection = get_index().collection_name()

    milvus_server.stop()
    milvus_server.wipe()
    # The scheduler keeps ticking while Milvus is down: that reconcile fails, and says so.
    reconcile_job().func()
    broker.join("index", fail_fast=False)  # the failure is the reconcile's own, recorded
    worker.join()
    failed = IndexRun.objects.filter(kind=IndexRun.Kind.RECONCILE).first()
    assert failed.error and failed.finished_at

    milvus_server.start()
    started = time.monotonic()
    # The scheduler's next ticks, a second apart here (INDEX_RECONCILE_INTERVAL_SECONDS in
    # production): a client that saw Milvus go away waits about a second before it connects
    # again (gRPC's reconnect backoff), so the first tick may still fail; one soon after heals.
    ticks = 0
    while True:
        ticks += 1
        reconcile_job().func()
        broker.join("index", fail_fast=False)
        worker.join()
        if IndexRun.objects.filter(kind=IndexRun.Kind.RECONCILE).first().error == "":
            break
        assert time.monotonic() - started < 60, "the reconcile never healed the index"
        time.sleep(1)
    repaired_in = time.monotonic() - started

    run = IndexRun.objects.filter(kind=IndexRun.Kind.RECONCILE).first()
    assert run.pk != failed.pk and run.error == ""
    assert (run.missing, run.repaired) == (products, products)
    assert run.collection and run.collection != lost_collection
    assert index_check().total == 0  # check_index is clean
    assert not Product.objects.exclude(index_state=IndexState.SYNCED).exists()
    new003 = Product.objects.get(sku="NEW003")
    hits = similar_bestsellers(product=new003).hits
    assert [hit.product.sku for hit in hits][:1] == ["SKU003"]  # a hybrid search finds it
    assert repaired_in < settings.INDEX_RECONCILE_INTERVAL_SECONDS
    with capsys.disabled():  # the figure for docs/operations.md (shown with pytest -s)
        print(
            f"\nMilvus data lost: {products} products back in the index {repaired_in:.1f} s "
            f"after Milvus came back ({ticks} reconcile ticks)"
        )
