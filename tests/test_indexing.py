"""The vector index against a real Milvus Lite: schema, sync, drift repair, rebuild, retrieval."""

import socket
import subprocess
import sys
from pathlib import Path

import dramatiq
import pytest
from django.core.management import call_command
from django.db import transaction

from catalog.colours import colour_words
from catalog.embedders import get_embedder
from catalog.embedders.offline import OfflineEmbedder
from catalog.importer import DirectoryImages, catalog_import
from catalog.indexing import (
    embeddings_for,
    get_index,
    index_check,
    index_flush_due,
    index_rebuild,
    products_remove,
    products_sync,
)
from catalog.models import ImageEmbedding, IndexRun, IndexState, Product
from catalog.selectors import bestseller_filter, similar_bestsellers
from catalog.sparse import active_vectorizer, encode, query_document
from catalog.tasks import sync_products
from catalog.vector_index import IndexUnavailable, VectorIndex, client
from tests.conftest import free_port, wait_for_port
from tests.factories import make_product
from tests.openrouter_server import OpenRouterServer, error_body

pytestmark = pytest.mark.django_db


class CountingEmbedder(OfflineEmbedder):
    """The offline embedder, counting the images it is asked to embed."""

    calls: list[int] = []

    def embed_images(self, images):
        CountingEmbedder.calls.append(len(images))
        return super().embed_images(images)


@pytest.fixture
def counting_embedder(settings):
    settings.EMBEDDER_BACKEND = "tests.test_indexing.CountingEmbedder"
    CountingEmbedder.calls = []
    return CountingEmbedder


@pytest.fixture
def sample_dir(sample_catalog) -> Path:
    return sample_catalog.directory


def import_sample(sample_dir: Path) -> None:
    for csv_name, images in (("products.csv", "images"), ("new_products.csv", "new_products")):
        result = catalog_import(
            csv_data=(sample_dir / csv_name).read_bytes(),
            images=DirectoryImages(sample_dir / images),
        )
        assert result.ok, result.errors


def milvus_ids(index) -> set[int]:
    return {row["id"] for row in index.rows(("sku",))}


def test_collection_has_the_seed_schema_behind_an_alias(milvus):
    index = get_index()
    name = index.ensure()

    description = client().describe_collection(name)
    fields = {f["name"]: f for f in description["fields"]}
    assert set(fields) == {
        "id",
        "dense",
        "sparse",
        "sku",
        "category",
        "color",
        "style",
        "season",
        "sales_count",
        "price",
        "image_sha256",
        "text_sha256",
        "text_version",
    }
    assert fields["id"]["is_primary"] and not description.get("auto_id")
    assert fields["dense"]["params"]["dim"] == OfflineEmbedder.dimension
    indexes = {i: client().describe_index(name, i) for i in client().list_indexes(name)}
    assert indexes["dense"]["metric_type"] == "COSINE"
    assert (indexes["sparse"]["index_type"], indexes["sparse"]["metric_type"]) == (
        "SPARSE_INVERTED_INDEX",
        "IP",
    )
    assert indexes["category"]["index_type"] == "INVERTED"
    assert client().describe_alias(index.alias)["collection_name"] == name


def test_sync_is_an_idempotent_upsert_and_records_the_state(milvus):
    products = [make_product(f"SKU{i}", color=c) for i, c in enumerate(["red", "navy", "olive"])]
    ids = [p.pk for p in products]

    products_sync(product_ids=ids)
    products_sync(product_ids=ids)

    index = get_index()
    assert milvus_ids(index) == set(ids)
    assert index.describe()["rows"] == 3
    product = Product.objects.get(pk=ids[0])
    assert product.index_state == IndexState.SYNCED and product.index_state_at is not None


def test_remove_deletes_the_row(milvus):
    keep, gone = make_product("KEEP"), make_product("GONE", color="red")
    products_sync(product_ids=[keep.pk, gone.pk])

    products_remove(product_ids=[gone.pk])

    assert milvus_ids(get_index()) == {keep.pk}


def test_sync_of_a_deleted_product_removes_it_from_the_index(milvus):
    product = make_product("GONE")
    products_sync(product_ids=[product.pk])
    pk = product.pk
    Product.objects.filter(pk=pk).delete()

    products_sync(product_ids=[pk])

    assert milvus_ids(get_index()) == set()


@pytest.mark.parametrize(
    "category", ['dress" or category != "x', 'a\\" or id >= 0 or "', "it's (50%)"]
)
def test_category_with_quotes_and_operators_neither_breaks_nor_widens_the_filter(milvus, category):
    tricky = make_product("TRICKY", category=category, sales_count=5000)
    other = make_product("OTHER", category="dress", sales_count=5000, color="red")
    query = make_product("QUERY", category=category, color="red")
    products_sync(product_ids=[tricky.pk, other.pk, query.pk])

    result = similar_bestsellers(product=query, top_k=3)

    assert [hit.product.sku for hit in result.hits] == ["TRICKY"]
    expr = bestseller_filter(category=category, min_sales=1500, exclude_id=query.pk)
    assert {
        row["sku"] for row in client().query(get_index().alias, filter=expr, output_fields=["sku"])
    } == {"TRICKY"}


def test_hybrid_search_ranks_the_twin_first_and_applies_every_filter(milvus, sample_dir):
    import_sample(sample_dir)
    index_rebuild()

    new003 = Product.objects.get(sku="NEW003")  # camel knit turtleneck dress
    result = similar_bestsellers(product=new003)

    skus = [hit.product.sku for hit in result.hits]
    assert skus[0] == "SKU003"  # its bestseller twin
    assert "SKU004" not in skus  # the twin that sells only 1,460
    assert len(skus) == 3 and result.complete and result.note == ""
    for hit in result.hits:
        assert hit.product.category == "dress" and hit.product.sales_count > 1500
        assert hit.product.pk != new003.pk
        assert hit.score > 0 and (hit.dense_rank or hit.sparse_rank)
    assert result.hits[0].dense_rank == 1
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


class MilvusCalls:
    """Every call the app makes on this process's pymilvus client, by method name."""

    def __init__(self, monkeypatch):
        self.names: list[str] = []
        milvus_client = client()
        for name in dir(milvus_client):
            method = getattr(milvus_client, name)
            if not name.startswith("_") and callable(method):
                monkeypatch.setattr(milvus_client, name, self._counted(name, method))

    def _counted(self, name, method):
        def call(*args, **kwargs):
            self.names.append(name)
            return method(*args, **kwargs)

        return call


def leg_ranks(index, *, field: str, vector, expr: str, limit: int) -> dict[int, int]:
    """A leg searched on its own, straight through pymilvus: the reference the ranks must match."""
    metric = "COSINE" if field == "dense" else "IP"
    data = [list(map(float, vector))] if field == "dense" else [vector]
    hits = client().search(
        index.alias,
        data,
        anns_field=field,
        limit=limit,
        filter=expr,
        search_params={"metric_type": metric},
        consistency_level="Strong",
    )[0]
    return {hit["id"]: rank for rank, hit in enumerate(hits, start=1)}


def test_a_search_is_one_milvus_request_and_its_leg_ranks_match_each_leg_searched_alone(
    milvus, sample_dir, monkeypatch, settings
):
    import_sample(sample_dir)
    index_rebuild()
    index = get_index()
    version = active_vectorizer().version
    checked = 0
    for product in Product.objects.filter(sku__startswith="NEW"):
        calls = MilvusCalls(monkeypatch)
        result = similar_bestsellers(product=product, top_k=5, min_sales=0)
        monkeypatch.undo()

        assert calls.names == ["hybrid_search"]
        expr = bestseller_filter(category=product.category, min_sales=0, exclude_id=product.pk)
        dense = embeddings_for([product])[product.image_sha256]
        colours = colour_words(embedder=get_embedder(), vector=dense)
        sparse = encode([query_document(product, colours)], version, for_query=True)[0]
        dense_ranks = leg_ranks(
            index, field="dense", vector=dense, expr=expr, limit=settings.RETRIEVAL_CANDIDATES
        )
        sparse_ranks = leg_ranks(
            index, field="sparse", vector=sparse, expr=expr, limit=settings.RETRIEVAL_CANDIDATES
        )
        for hit in result.hits:
            assert hit.dense_rank == dense_ranks.get(hit.product.pk)
            assert hit.sparse_rank == sparse_ranks.get(hit.product.pk)
            reciprocal = sum(
                1 / (settings.RETRIEVAL_RRF_K + rank)
                for rank in (hit.dense_rank, hit.sparse_rank)
                if rank
            )
            assert hit.score == pytest.approx(reciprocal, rel=1e-5)
            checked += 1
    assert checked >= 12


def test_a_bulk_sync_flushes_at_once(milvus, settings, monkeypatch):
    settings.INDEX_FLUSH_MIN_ROWS = 3
    products = [make_product(f"SKU{i}", color=c) for i, c in enumerate(["red", "navy", "olive"])]
    get_index().ensure()

    calls = MilvusCalls(monkeypatch)
    products_sync(product_ids=[p.pk for p in products])

    assert calls.names.count("flush") == 1
    assert calls.names.index("flush") > calls.names.index("upsert")


@pytest.fixture(params=["in this process", "in redis"])
def flush_marks(request, settings, tmp_path):
    """Where the "flush due" mark is kept: in memory without a Redis broker, else in Redis."""
    if request.param == "in this process":
        yield
        return
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        settings.DRAMATIQ_BROKER = {
            **settings.DRAMATIQ_BROKER,
            "BROKER": "dramatiq.brokers.redis.RedisBroker",
        }
        yield
    finally:
        server.terminate()
        server.wait()


def test_small_syncs_leave_one_flush_to_the_periodic_job(
    milvus, flush_marks, settings, monkeypatch
):
    settings.INDEX_FLUSH_MIN_ROWS = 3
    first, second = make_product("FIRST"), make_product("SECOND", color="red")
    get_index().ensure()
    assert index_flush_due() is False  # nothing written yet

    calls = MilvusCalls(monkeypatch)
    products_sync(product_ids=[first.pk])
    products_sync(product_ids=[second.pk])
    assert "flush" not in calls.names

    assert index_flush_due() is True
    assert index_flush_due() is False
    assert calls.names.count("flush") == 1
    assert milvus_ids(get_index()) == {first.pk, second.pk}


def test_every_sample_new_product_finds_its_bestseller_twin_first(milvus, sample_dir):
    import_sample(sample_dir)
    index_rebuild()
    twins = {"NEW001": "SKU011", "NEW002": "SKU001", "NEW003": "SKU003", "NEW004": "SKU019"}

    firsts = {
        sku: similar_bestsellers(product=Product.objects.get(sku=sku)).hits[0].product.sku
        for sku in twins
    }

    assert firsts == twins


def test_too_few_bestsellers_is_said_and_relaxing_is_recorded(milvus):
    make_product("BEST", category="hat", sales_count=4000)
    make_product("SLOW", category="hat", sales_count=200, color="red")
    query = make_product("NEWHAT", category="hat")
    products_sync(product_ids=list(Product.objects.values_list("pk", flat=True)))

    strict = similar_bestsellers(product=query, top_k=3)
    relaxed = similar_bestsellers(product=query, top_k=3, relax_to=0)

    assert [h.product.sku for h in strict.hits] == ["BEST"]
    assert not strict.complete and "Only 1 of 3" in strict.note
    assert {h.product.sku for h in relaxed.hits} == {"BEST", "SLOW"}
    assert relaxed.relaxed_from == 1500 and relaxed.min_sales == 0
    assert "lowered to 0" in relaxed.note


def test_rebuild_fills_a_new_collection_and_swaps_the_alias(milvus):
    products = [make_product(f"SKU{i}", color=c) for i, c in enumerate(["red", "navy"])]
    products_sync(product_ids=[p.pk for p in products])
    index = get_index()
    old = index.collection_name()

    run = index_rebuild(refit=True)

    assert run.collection != old and index.collection_name() == run.collection
    assert old not in client().list_collections()
    assert milvus_ids(index) == {p.pk for p in products}
    assert IndexRun.objects.get(kind=IndexRun.Kind.REBUILD).finished_at is not None


def test_rebuild_and_sales_updates_never_embed_an_image_twice(milvus, counting_embedder):
    product = make_product("SKU1", sales_count=10)
    products_sync(product_ids=[product.pk])
    assert counting_embedder.calls == [1]

    Product.objects.filter(pk=product.pk).update(sales_count=2500)
    products_sync(product_ids=[product.pk])
    index_rebuild(refit=True)

    assert counting_embedder.calls == [1]
    assert ImageEmbedding.objects.count() == 1
    row = next(get_index().rows(("sales_count",)))
    assert row["sales_count"] == 2500


def test_check_index_finds_and_repairs_missing_stale_and_orphaned_rows(milvus):
    a, b, c = (make_product(f"SKU{i}", color=col) for i, col in enumerate(["red", "navy", "olive"]))
    products_sync(product_ids=[a.pk, b.pk, c.pk])
    index = get_index()
    index.delete([a.pk])  # missing
    Product.objects.filter(pk=b.pk).update(sales_count=999)  # stale
    row = next(r for r in client().query(index.alias, filter=f"id == {c.pk}", output_fields=["*"]))
    client().upsert(index.alias, [{**row, "id": 999_999}])  # orphaned

    drift = index_check()
    assert (drift.missing, drift.stale, drift.orphaned) == ([a.pk], [b.pk], [999_999])

    repaired = index_check(repair=True)
    assert repaired.repaired == 3
    assert index_check().total == 0
    assert IndexRun.objects.filter(kind=IndexRun.Kind.RECONCILE).count() == 3


def test_check_index_reads_the_index_a_page_at_a_time(milvus, monkeypatch):
    # More rows than a page: the check reads them all and pops their ids as it goes.
    monkeypatch.setattr(VectorIndex, "ROWS_PAGE", 2)
    products = [make_product(f"SKU{i}") for i in range(5)]
    products_sync(product_ids=[p.pk for p in products])

    assert index_check().total == 0
    assert milvus_ids(get_index()) == {p.pk for p in products}


def test_check_index_command_prints_counts_and_repairs(milvus, capsys):
    product = make_product("SKU1")

    with pytest.raises(Exception, match="1 rows differ"):
        call_command("check_index")
    call_command("check_index", "--repair")

    out = capsys.readouterr().out
    assert "missing: 1  stale: 0  orphaned: 0" in out and "repaired: 1" in out
    assert milvus_ids(get_index()) == {product.pk}


def test_reindex_command_rebuilds(milvus, capsys):
    make_product("SKU1")
    call_command("reindex")
    assert "Indexed 1 products" in capsys.readouterr().out


def test_similar_bestsellers_command_prints_a_table(milvus, sample_dir, capsys):
    import_sample(sample_dir)
    index_rebuild()

    call_command("similar_bestsellers", "NEW003", "--top-k", "2")

    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 2 and "SKU003" in lines[0]


# --- sync after commit, through Dramatiq ---------------------------------------------------


def test_saving_a_product_queues_a_sync_only_after_commit(
    broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        product = make_product("SKU1")
    assert len(callbacks) == 1
    assert broker.queues["index"].qsize() == 1
    assert Product.objects.get(pk=product.pk).index_state == IndexState.PENDING


def test_a_rolled_back_save_queues_nothing(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            make_product("SKU1")
            raise RuntimeError("rolled back")
    assert callbacks == []
    assert broker.queues.get("index") is None or broker.queues["index"].qsize() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_syncs_a_saved_product_into_milvus(milvus, broker, worker):
    product = make_product("SKU1")  # autocommit: the message is sent at once

    broker.join("index")
    worker.join()

    assert milvus_ids(get_index()) == {product.pk}
    assert Product.objects.get(pk=product.pk).index_state == IndexState.SYNCED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_import_queues_one_batched_sync_and_the_worker_indexes_everything(
    milvus, broker, worker, sample_dir
):
    import_sample(sample_dir)

    broker.join("index")
    worker.join()

    assert len(milvus_ids(get_index())) == 44
    assert set(Product.objects.values_list("index_state", flat=True)) == {IndexState.SYNCED}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_milvus_down_the_save_succeeds_and_the_state_says_failed(settings):
    settings.MILVUS_URI = f"http://127.0.0.1:{_closed_port()}"
    settings.MILVUS_TIMEOUT = 1
    product = make_product("SKU1")
    assert Product.objects.get(pk=product.pk).index_state == IndexState.PENDING

    with pytest.raises(IndexUnavailable):
        products_sync(product_ids=[product.pk])

    product.refresh_from_db()
    assert product.index_state == IndexState.FAILED
    assert "unavailable" in product.index_error and product.index_state_at is not None


def test_an_import_without_index_sync_leaves_products_pending_for_the_reconcile(
    broker, django_capture_on_commit_callbacks, sample_dir
):
    with django_capture_on_commit_callbacks(execute=True):
        result = catalog_import(
            csv_data=(sample_dir / "new_products.csv").read_bytes(),
            images=DirectoryImages(sample_dir / "new_products"),
            sync_index=False,
        )

    assert result.created == 4
    assert broker.queues.get("index") is None or broker.queues["index"].qsize() == 0
    assert set(Product.objects.values_list("index_state", flat=True)) == {IndexState.PENDING}


@pytest.fixture
def openrouter_embedder(settings):
    with OpenRouterServer(dimension=8) as server:
        settings.EMBEDDER_BACKEND = "catalog.embedders.openrouter.OpenRouterEmbedder"
        settings.OPENROUTER_API_KEY = server.api_key
        settings.OPENROUTER_BASE_URL = server.base_url
        settings.EMBEDDING_DIMENSION = 8
        settings.OPENROUTER_MAX_RETRY_AFTER = 30
        yield server


def test_a_rate_limited_embedding_retries_the_sync_message_after_the_providers_delay(
    milvus, openrouter_embedder
):
    product = make_product("SKU1")
    openrouter_embedder.fail_next(status=429, headers={"Retry-After": "7"})

    with pytest.raises(dramatiq.Retry) as caught:
        sync_products.fn([product.pk])  # the actor's body, as the worker runs it

    assert caught.value.delay == 7_000  # Dramatiq delivers it again then; nothing slept here
    product.refresh_from_db()
    assert product.index_state == IndexState.FAILED and "OpenRouter 429" in product.index_error
    sync_products.fn([product.pk])  # the redelivered message
    product.refresh_from_db()
    assert product.index_state == IndexState.SYNCED
    assert len(openrouter_embedder.requests) == 2


def test_an_embedding_refused_for_good_is_not_retried_and_says_why(milvus, openrouter_embedder):
    product = make_product("SKU1")
    openrouter_embedder.fail_next(status=402, json=error_body(402, "Insufficient credits"))

    sync_products.fn([product.pk])  # returns: retrying cannot help

    product.refresh_from_db()
    assert product.index_state == IndexState.FAILED
    assert "OpenRouter 402: Insufficient credits" in product.index_error
    assert len(openrouter_embedder.requests) == 1
