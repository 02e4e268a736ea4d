"""The ledger against the provider's own books (core.reconcile), with the provider billing the
way OpenRouter does: when it has produced an answer, read or not.

Real parts: the openai client against the OpenRouter-protocol server (which keeps the bill,
gives every answer a generation id and answers GET /key and GET /generation), and a worker
process killed with SIGKILL while its image call is in flight.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from core import openrouter as openrouter_client
from core.models import ProviderCall, SpendReconcile, SpendReservation
from core.reconcile import spend_reconcile, unattributed_total
from core.spending import SpendingCapReached, month_spent, spend_book, spend_reserve
from generation.models import AssetStatus, GeneratedAsset
from generation.pipeline import RetryLater, asset_run
from tests.test_reliability import ROOT, _subprocess_env, billed, booked, ready_assets

IMAGE_1K = Decimal("0.067")


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def analysed(asset: GeneratedAsset) -> None:
    """The style analysis done, so the asset's next call is the image."""
    GeneratedAsset.objects.filter(pk=asset.pk).update(style_prompt="Soft light.", analyst_model="m")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_workers_billed_call_is_unattributed_spend_that_the_cap_counts(
    openrouter, settings
):
    settings.MONTHLY_SPENDING_CAP = "0.10"
    settings.SPENDING_SETTLE_AFTER_SECONDS = 1
    [asset] = ready_assets()
    analysed(asset)
    assert spend_reconcile().baseline == 0  # nothing in flight: the key's baseline is taken
    openrouter.fail_next(delay=2.0)  # the image is produced 2 s after it is asked for

    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            f"from generation.pipeline import asset_run; asset_run(asset_id={asset.pk}, worker='doomed')",
        ],
        cwd=ROOT,
        env={**_subprocess_env(settings, openrouter), "SPENDING_RESERVATION_SECONDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: any("modalities" in (r.json or {}) for r in openrouter.in_flight.values()))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: len(openrouter.bills) == 1)  # the provider bills it all the same

    assert booked() == 0 and billed(openrouter) == IMAGE_1K
    [left_behind] = SpendReservation.objects.all()
    with pytest.raises(SpendingCapReached):  # unsettled, it still holds the cap
        spend_reserve(amount=Decimal("0.05"), owner="w", subject="asset:99")

    time.sleep(1.1)  # past the reservation's expiry and the settle window
    run = spend_reconcile()

    assert (run.settled, run.unattributed, run.booked) == (1, IMAGE_1K, IMAGE_1K)
    assert not SpendReservation.objects.exists()
    line = ProviderCall.objects.get(kind=ProviderCall.Kind.UNATTRIBUTED)
    assert line.cost == IMAGE_1K and line.window_end is not None
    assert booked() == billed(openrouter) == month_spent() == IMAGE_1K
    with pytest.raises(SpendingCapReached):  # and now the month's spend holds it
        spend_reserve(amount=Decimal("0.05"), owner="w", subject="asset:99")

    # The redelivered message pays for the image again (OpenRouter kept no copy of it).
    settings.MONTHLY_SPENDING_CAP = ""
    GeneratedAsset.objects.filter(pk=asset.pk).update(claimed_by="", claimed_at=None)
    asset_run(asset_id=asset.pk, worker="w2")
    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW, asset.last_error
    assert [b.kind for b in openrouter.bills] == ["image", "image", "qa"]
    assert spend_reconcile().booked == 0
    assert booked() == billed(openrouter) == month_spent()


@pytest.mark.django_db
def test_a_call_that_outlives_the_timeout_stays_reserved_until_a_reconcile_settles_it(
    openrouter, settings
):
    settings.OPENROUTER_TIMEOUT = 1
    settings.MONTHLY_SPENDING_CAP = "0.10"
    settings.SPENDING_SETTLE_AFTER_SECONDS = 3  # the provider has surely finished by then
    [asset] = ready_assets()
    analysed(asset)
    spend_reconcile()
    openrouter.fail_next(delay=1.5)  # answered, and billed, after the client gave up

    with pytest.raises(RetryLater):
        asset_run(asset_id=asset.pk, worker="w1")

    [doubt] = SpendReservation.objects.all()
    assert doubt.in_doubt and "did not answer within 1 s" in doubt.note
    with pytest.raises(SpendingCapReached):
        spend_reserve(amount=Decimal("0.05"), owner="w", subject="asset:99")
    wait_for(lambda: len(openrouter.bills) == 1)
    assert spend_reconcile().settled == 0  # started less than the settle window ago: kept
    assert SpendReservation.objects.count() == 1

    time.sleep(1.6)
    run = spend_reconcile()

    assert (run.settled, run.unattributed) == (1, IMAGE_1K)
    assert booked() == billed(openrouter) == month_spent() == IMAGE_1K


@pytest.mark.django_db
def test_a_rate_limited_call_releases_its_reservation(openrouter):
    [asset] = ready_assets()
    analysed(asset)
    openrouter.fail_next(status=429, headers={"Retry-After": "1"})

    asset_run(asset_id=asset.pk, worker="w1")  # waits out the 429, then makes the image

    # The 429 was not billed: its reservation is gone, and only the answers are booked.
    assert not SpendReservation.objects.exists()
    assert [bill.kind for bill in openrouter.bills] == ["image", "qa"]
    assert ProviderCall.objects.count() == 2 and booked() == billed(openrouter)


@pytest.mark.django_db
def test_every_booked_call_keeps_its_generation_id_and_is_checked_against_the_record(openrouter):
    [asset] = ready_assets()
    openrouter.generation_record_delay = 60  # OpenRouter's record appears late

    asset_run(asset_id=asset.pk, worker="w1")

    calls = ProviderCall.objects.order_by("pk")
    assert [c.generation_id for c in calls] == [b.generation_id for b in openrouter.bills]
    assert len({c.generation_id for c in calls}) == 3 and all(
        c.generation_id.startswith("gen-") for c in calls
    )
    assert spend_reconcile().generations_checked == 0  # 404 for now: asked again next time

    openrouter.generation_record_delay = 0
    run = spend_reconcile()

    assert (run.generations_checked, run.generations_differing, run.booked) == (3, 0, 0)
    assert all(call.provider_cost == call.cost for call in ProviderCall.objects.all())


@pytest.mark.django_db
def test_the_keys_spend_before_the_ledger_is_the_baseline_taken_when_nothing_is_in_flight(
    openrouter,
):
    openrouter.other_usage = 12.5  # the key had spent this before the studio counted
    reservation = spend_reserve(amount=Decimal("0.07"), owner="w", subject="asset:1", key="k1")

    waiting = spend_reconcile()
    assert waiting.baseline is None and "in flight" in waiting.note and waiting.booked == 0

    SpendReservation.objects.filter(pk=reservation.pk).delete()
    run = spend_reconcile()
    assert (run.baseline, run.unattributed, run.booked) == (Decimal("12.5"), 0, 0)

    openrouter.other_usage = 13.0  # another application uses the same key
    assert spend_reconcile().booked == Decimal("0.5")  # which is why the studio needs its own


@pytest.mark.django_db
def test_a_kept_answer_booked_after_its_reservation_was_settled_corrects_the_estimate(
    openrouter, settings
):
    settings.SPENDING_SETTLE_AFTER_SECONDS = 0
    spend_reconcile()
    reservation = spend_reserve(
        amount=Decimal("0.01"), owner="dead", subject="asset:1", key="asset:1:analysis:1"
    )
    response = openrouter_client.request(
        openrouter_client.client().chat.completions.create,
        model="qwen/test",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Describe."}]}],
    )
    usage = openrouter_client.usage_of(response)
    SpendReservation.objects.filter(pk=reservation.pk).update(in_doubt=True)

    assert spend_reconcile().unattributed == Decimal("0.0012")

    spend_book(  # a redelivered task finds the answer its predecessor kept, and books it
        key="asset:1:analysis:1",
        kind=ProviderCall.Kind.ANALYSIS,
        subject="asset:1",
        model="qwen/test",
        cost=Decimal("0.0012"),
        price=Decimal("0.01"),
        usage=usage,
    )
    run = spend_reconcile()

    assert (run.unattributed, run.booked) == (0, Decimal("-0.0012"))
    assert unattributed_total() == 0
    assert booked() == billed(openrouter) == month_spent() == Decimal("0.0012")


@pytest.mark.django_db
def test_an_unreadable_account_is_a_recorded_error_that_books_nothing(openrouter):
    openrouter.fail_next(status=500)

    run = spend_reconcile()

    assert "Could not read the provider's account" in run.error and run.booked == 0
    assert SpendReconcile.objects.count() == 1 and not ProviderCall.objects.exists()


@pytest.mark.django_db
def test_without_a_provider_there_is_nothing_to_reconcile(settings):
    settings.OPENROUTER_API_KEY = ""
    assert spend_reconcile() is None
