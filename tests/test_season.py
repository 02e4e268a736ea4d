"""Season throughput: calls follow the provider's rate limit, a 429 never fails an asset, a
killed worker leaks no call slot, interactive work overtakes a drop, and batches share.

Real parts: the limiter's Lua scripts on a real redis-server (tests/conftest.py), the openai
client against the OpenRouter-protocol server with a sliding-window rate limit and latency,
a real Dramatiq worker on the stub broker, and a process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from core import openrouter as openrouter_client
from core import ratelimit
from core.models import ProviderCall, SpendReservation
from core.openrouter import ProviderError
from generation.admin import batch_progress
from generation.models import (
    AssetEvent,
    AssetReference,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
    Lane,
    QAStatus,
)
from generation.periodic import requeue_lost_assets
from generation.review import asset_recheck, asset_regenerate
from generation.services import DISPATCHING, BatchRequest, assets_requeue_lost, batch_create
from tests.conftest import free_port
from tests.factories import make_product
from tests.openrouter_server import chat_completion
from tests.test_reliability import (  # noqa: F401 - shared fixtures
    ROOT,
    billed,
    booked,
    redis_broker,
    redis_server,
)
from tests.test_review import user_in


def pace(model: str) -> ratelimit.ModelPace:
    return ratelimit.limiter_state()[model]


def take_all(stack: ExitStack, model: str) -> list[ratelimit.Slot]:
    """Every slot the model's limit allows, held until the stack closes (one round)."""
    return [
        stack.enter_context(ratelimit.slot(model)) for _ in range(int(pace_or_start(model).limit))
    ]


def pace_or_start(model: str) -> ratelimit.ModelPace:
    return ratelimit.limiter_state().get(model) or ratelimit.ModelPace(
        model, django_settings.OPENROUTER_CONCURRENCY_START, 0, 0, None, None, 0, 0, 0.0
    )


# --- the limit follows the provider --------------------------------------------------------


def test_a_429_storm_halves_the_limit_once_per_round_and_successes_bring_it_back(settings):
    settings.OPENROUTER_CONCURRENCY_START = 8
    settings.OPENROUTER_CONCURRENCY_CEILINGS = {"m": 10}

    with ExitStack() as stack:  # a round of 8 calls, every one answered 429
        for held in take_all(stack, "m"):
            held.limited(retry_after=1.0)
    storm = pace("m")
    assert (storm.limit, storm.rate_limited, storm.in_flight) == (4, 8, 0)  # halved once
    assert storm.blocked_until is not None

    started = time.monotonic()
    with ExitStack() as stack:  # the next round waits for Retry-After, and is limited again
        for held in take_all(stack, "m"):
            held.limited(retry_after=0.2)  # shorter than a second counts as one
    assert time.monotonic() - started >= 0.9
    assert pace("m").limit == 2

    limits = []
    for _ in range(12):  # rounds of successful calls: about one more per round
        with ExitStack() as stack:
            take_all(stack, "m")
        limits.append(pace("m").limit)
    assert limits == sorted(limits) and limits[0] < 3 and 8 <= limits[-1] <= 10
    for _ in range(30):
        with ExitStack() as stack:
            take_all(stack, "m")
    assert pace("m").limit == 10  # never above the model's ceiling

    for _ in range(6):  # and never below one call in flight
        with ExitStack() as stack:
            for held in take_all(stack, "m"):
                held.limited(retry_after=0.0)
    assert pace("m").limit == 1 and pace("m").rate_limited > 20


def test_a_models_calls_start_spread_over_its_call_time(settings):
    settings.OPENROUTER_CONCURRENCY_START = 5
    with ratelimit.slot("m"):
        time.sleep(0.5)  # the model's calls take half a second
    assert pace("m").limit == 5  # one call of five allowed did not test the limit: no growth

    starts = []
    with ExitStack() as stack:
        for _ in range(5):
            stack.enter_context(ratelimit.slot("m"))
            starts.append(time.monotonic())
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    # 5 in flight over 0.5 s: one start every 0.1 s, not a burst of 5 at once.
    assert all(0.08 <= gap <= 0.2 for gap in gaps), gaps


def test_a_bulk_call_does_not_take_the_slot_an_interactive_one_waits_for(settings):
    settings.OPENROUTER_CONCURRENCY_START = 1
    order = []
    with ExitStack() as stack:
        stack.enter_context(ratelimit.slot("m"))  # the model is full

        def call(interactive: bool, delay: float) -> None:
            time.sleep(delay)
            with ratelimit.turns(interactive=interactive), ratelimit.slot("m"):
                order.append("interactive" if interactive else "bulk")
                time.sleep(0.3)

        bulk = threading.Thread(target=call, args=(False, 0))
        interactive = threading.Thread(target=call, args=(True, 0.3))
        bulk.start()
        interactive.start()
        time.sleep(0.8)  # both wait; the bulk call has waited longer
    bulk.join()
    interactive.join()
    assert order == ["interactive", "bulk"]


def test_a_killed_workers_slot_runs_out_and_a_live_one_is_renewed(settings, rate_limiter):
    settings.OPENROUTER_SLOT_TTL_SECONDS = 1
    settings.OPENROUTER_CONCURRENCY_START = 1
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import django, time; django.setup(); from core import ratelimit\n"
            "with ratelimit.slot('m'):\n    print('held', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "OPENROUTER_LIMITER_URL": settings.OPENROUTER_LIMITER_URL,
            "OPENROUTER_SLOT_TTL_SECONDS": "1",
            "OPENROUTER_CONCURRENCY_START": "1",
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    time.sleep(2.5)  # its renewals keep the slot past the ttl
    assert pace("m").in_flight == 1

    holder.send_signal(signal.SIGKILL)  # mid-call: no chance to give the slot back
    holder.wait()
    started = time.monotonic()
    with ratelimit.turns(budget=5), ratelimit.slot("m"):
        freed_after = time.monotonic() - started
        time.sleep(2.5)  # this process renews its own slot too
        assert pace("m").in_flight == 1
    assert freed_after <= 2.0, freed_after  # one ttl after its last renewal, and a look
    assert pace("m").in_flight == 0


def test_an_upstream_429_inside_a_200_answer_paces_the_model_too(openrouter):
    answer = chat_completion("m", "")
    answer["choices"][0].update(
        finish_reason="error", error={"code": 429, "message": "Upstream rate limited"}
    )
    answer.pop("usage")  # nothing produced, nothing billed
    openrouter.fail_next(json=answer)

    with pytest.raises(ProviderError) as failed:
        openrouter_client.request(
            openrouter_client.client().chat.completions.create,
            model="m",
            messages=[{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        )

    assert failed.value.status == 429 and failed.value.retryable
    assert pace("m").rate_limited == 1 and pace("m").blocked_until is not None


def test_a_429_that_states_its_window_paces_the_models_starts_to_it(openrouter, settings):
    settings.OPENROUTER_CONCURRENCY_START = 20  # far more than the window admits
    openrouter.rate_limit = (10, 2.0)  # 10 calls in any 2 s: 5 a second
    openrouter.latency = 0.2

    def call_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                openrouter_client.request(
                    openrouter_client.client().chat.completions.create,
                    model="m",
                    messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                )
            except ProviderError as exc:
                assert exc.status == 429 and exc.window is not None  # waits, and goes again

    threads = [threading.Thread(target=call_for, args=(6,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The first 429 taught the pace: 10 calls per 2 s, 5 % wider.
    assert 270 <= pace("m").paced_per_minute <= 290
    learned = openrouter.rate_limited[0][0]
    later = [at for at, _, _ in openrouter.rate_limited if at > learned + 1.0]
    assert len(later) <= 1, later  # after it, the starts kept to the window
    admitted = [
        r.at for r in openrouter.requests if r.at > learned + 2.0 and r.path.endswith("ions")
    ]
    span = max(admitted) - min(admitted)
    assert 4.0 <= (len(admitted) - 1) / span <= 5.0  # about all the window admits, no more


def test_calls_go_ahead_unpaced_when_the_limiters_redis_is_away(settings):
    settings.OPENROUTER_LIMITER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    with ratelimit.slot("m") as held:
        assert held is None  # the call is made, only not paced
    assert ratelimit.limiter_state() == {}


# --- a drop against the provider's rate limit ----------------------------------------------


def prepared_batch(prefix: str, count: int) -> GenerationBatch:
    """A batch of `count` images whose retrieval is done (a bestseller reference recorded), so
    the pipeline's next steps are the paid ones; sent once it commits."""
    with transaction.atomic():
        reference = make_product(f"{prefix}-BEST", color="navy", sales_count=5000)
        products = [make_product(f"{prefix}-{n}", color="red") for n in range(count)]
        batch = batch_create(
            user=None,
            request=BatchRequest(
                products, [ChannelPreset.objects.get(name="Storefront hero")], "1K", 1
            ),
            estimated_cost=Decimal("0"),
        )
        for asset in batch.assets.all():
            AssetReference.objects.create(asset=asset, product=reference, rank=1, score=0.03)
        batch.assets.update(retrieved_at=timezone.now())
    return batch


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def reviewed_at(asset: GeneratedAsset) -> float:
    return (
        AssetEvent.objects.filter(asset=asset, to_status=AssetStatus.IN_REVIEW)
        .get()
        .created_at.timestamp()
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("wait", [90, 0], ids=["waiting in the worker", "sent again for later"])
def test_a_drop_against_a_tight_rate_limit_fails_nothing_and_waits_out_every_429(
    openrouter, broker, worker, settings, wait
):
    settings.OPENROUTER_RATE_WAIT_SECONDS = wait
    settings.GENERATION_MAX_ATTEMPTS = 1  # a 429 counted as an attempt would fail its asset
    settings.GENERATION_INTERACTIVE_MAX_ASSETS = 1
    settings.OPENROUTER_CONCURRENCY_START = 16
    openrouter.rate_limit = (3, 1.0)  # per model: 3 calls per second
    openrouter.latency = 0.1

    batch = prepared_batch("DROP", 10)
    wait_until(lambda: not batch.assets.filter(status__in=AssetStatus.running()).exists())

    statuses = set(batch.assets.values_list("status", flat=True))
    assert statuses == {AssetStatus.IN_REVIEW}
    assert openrouter.rate_limited  # the drop met the limit
    if wait:  # every 429 waited out in the worker, within the one delivery
        assert not batch.assets.filter(attempts__gt=1).exists()
    else:  # its 429s ended deliveries that were sent again, none of them an attempt
        assert batch.assets.filter(rate_waits__gt=0).exists()
    for model, paced in ratelimit.limiter_state().items():
        limited = sum(hit[1] == model for hit in openrouter.rate_limited)
        assert paced.rate_limited == limited and (not limited or paced.limit < 16)
    # After a 429 nobody called that model before its window had room (Retry-After and
    # X-RateLimit-Reset), beyond calls already on their way when the 429 was answered (a
    # thread that took its slot just before may be scheduled a little later on a busy host).
    for at, model, reset in openrouter.rate_limited:
        early = [
            r
            for r in openrouter.requests
            if r.json.get("model") == model and at + 0.2 < r.at < reset
        ]
        assert not early, (at, reset, [r.at for r in early])
    # The batch page says how long the drop waited for the limit, and each model's limit.
    if wait:
        assert sum(batch.assets.values_list("rate_wait_seconds", flat=True)) > 0
    pace = batch_progress(batch)["counts"]
    assert pace["time_left"] == "none: every image has finished"
    assert all(model in pace["limits"] for model in ratelimit.limiter_state())
    # 429s are not billed: nothing reserved is left, and the ledger is what the provider billed.
    assert not SpendReservation.objects.exists()
    assert ProviderCall.objects.count() == len(openrouter.bills) and booked() == billed(openrouter)


# --- interactive first, and batches in turn ------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_regeneration_overtakes_a_queued_bulk_drop(openrouter, broker, worker, settings):
    settings.GENERATION_INTERACTIVE_MAX_ASSETS = 1
    settings.GENERATION_BULK_MESSAGES = 4
    # One image call at a time, so the drop queues up behind the image model.
    settings.OPENROUTER_CONCURRENCY_CEILINGS = {settings.IMAGE_GENERATOR_MODEL: 1}
    openrouter.latency = 0.25
    drop = prepared_batch("DROP", 14)
    wait_until(lambda: drop.assets.filter(status=AssetStatus.IN_REVIEW).exists())
    first = drop.assets.filter(status=AssetStatus.IN_REVIEW).first()

    regenerated = asset_regenerate(
        asset=first, user=user_in("Reviewer", "rev"), feedback="a warmer light"
    )
    assert regenerated.lane == Lane.INTERACTIVE
    wait_until(lambda: GeneratedAsset.objects.get(pk=regenerated.pk).status != AssetStatus.QUEUED)
    wait_until(
        lambda: GeneratedAsset.objects.get(pk=regenerated.pk).status == AssetStatus.IN_REVIEW
    )

    still_running = drop.assets.filter(status__in=AssetStatus.running()).count()
    assert still_running >= 6  # of the 13 the drop had left when it was asked for
    wait_until(lambda: not drop.assets.filter(status__in=AssetStatus.running()).exists())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_quality_recheck_overtakes_a_queued_bulk_drop_and_pays_one_more_check(
    openrouter, broker, worker, settings
):
    settings.GENERATION_INTERACTIVE_MAX_ASSETS = 1
    settings.GENERATION_BULK_MESSAGES = 4
    # One quality check at a time (its model also analyses the style), so the drop queues up.
    settings.OPENROUTER_CONCURRENCY_CEILINGS = {settings.QUALITY_CHECK_MODEL: 1}
    openrouter.latency = 0.25
    drop = prepared_batch("DROP", 14)
    wait_until(lambda: drop.assets.filter(status=AssetStatus.IN_REVIEW).exists())
    first = drop.assets.filter(status=AssetStatus.IN_REVIEW).first()
    checks = ProviderCall.objects.filter(subject=first.ledger_subject, kind=ProviderCall.Kind.QA)
    assert checks.count() == 1
    image = first.image.name

    asset_recheck(asset=first, user=user_in("Reviewer", "rev"))
    first.refresh_from_db()
    assert (first.status, first.lane, first.qa_status) == (
        AssetStatus.CHECKING,
        Lane.INTERACTIVE,
        "",
    )
    wait_until(lambda: GeneratedAsset.objects.get(pk=first.pk).status == AssetStatus.IN_REVIEW)

    still_running = drop.assets.filter(status__in=AssetStatus.running()).count()
    assert still_running >= 6  # of the 13 the drop had left when it was asked for
    first.refresh_from_db()
    assert first.qa_status == QAStatus.PASSED and first.image.name == image  # the same image
    assert checks.count() == 2  # one more check, booked like the first
    assert AssetEvent.objects.filter(
        asset=first, from_status=AssetStatus.IN_REVIEW, to_status=AssetStatus.CHECKING
    ).exists()
    wait_until(lambda: not drop.assets.filter(status__in=AssetStatus.running()).exists())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_small_batch_started_during_a_large_one_finishes_long_before_it(
    openrouter, broker, worker, settings
):
    settings.GENERATION_INTERACTIVE_MAX_ASSETS = 1
    settings.GENERATION_BULK_MESSAGES = 2
    openrouter.latency = 0.1
    large = prepared_batch("LARGE", 16)
    small = prepared_batch("SMALL", 3)
    assert {large.assets.first().lane, small.assets.first().lane} == {Lane.BULK}

    wait_until(lambda: not GeneratedAsset.objects.filter(status__in=AssetStatus.running()).exists())

    small_done = max(reviewed_at(asset) for asset in small.assets.all())
    large_times = sorted(reviewed_at(asset) for asset in large.assets.all())
    # First come, first served would finish the small batch after all 16 of the large one;
    # in turns it finishes while most of the large one is still to do.
    assert sum(at <= small_done for at in large_times) <= 6


# --- nothing is stranded -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_periodic_job_dispatches_waiting_bulk_assets_and_resends_a_lost_dispatch(
    broker, settings, django_capture_on_commit_callbacks
):
    settings.GENERATION_INTERACTIVE_MAX_ASSETS = 1
    settings.GENERATION_BULK_MESSAGES = 3
    settings.GENERATION_REQUEUE_AFTER_SECONDS = 0
    # A batch whose dispatch never ran (the process died right after the commit).
    batch = prepared_batch("LOST", 5)
    assert not batch.assets.exclude(message_id="").exists()

    with django_capture_on_commit_callbacks(execute=True):
        requeue_lost_assets.fn()

    assert batch.assets.exclude(message_id="").count() == 3  # the bulk limit, no more
    assert broker.queues["generation"].qsize() == 3
    # A dispatch that died between taking an asset and sending it: the sweeper sends it.
    stranded = batch.assets.filter(message_id="").first()
    GeneratedAsset.objects.filter(pk=stranded.pk).update(
        message_id=DISPATCHING, updated_at=timezone.now() - timedelta(seconds=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert assets_requeue_lost() == 1
    assert GeneratedAsset.objects.get(pk=stranded.pk).message_id not in ("", DISPATCHING)


@pytest.mark.django_db
def test_a_bulk_batch_requested_while_redis_is_down_waits_in_the_database(
    redis_broker, settings, django_capture_on_commit_callbacks
):
    broker, state = redis_broker
    settings.GENERATION_INTERACTIVE_MAX_ASSETS = 1
    state["server"].terminate()
    state["server"].wait()

    with django_capture_on_commit_callbacks(execute=True):
        batch = prepared_batch("DOWN", 3)  # its dispatch fails, and gives up

    assert set(batch.assets.values_list("message_id", flat=True)) == {""}
    assert all("Could not reach the task queue" in a.last_error for a in batch.assets.all())
