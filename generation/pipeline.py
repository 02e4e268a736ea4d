"""The pipeline behind the Dramatiq actor: one asset from queued to in review.

`asset_run` retrieves similar bestsellers, analyses their style, generates the image (for a
staged preset: the scene first, then the product in it), validates and stores it, then has it
checked (QA) before it reaches review. Every step saves its result on the asset before the next
starts; a redelivered message resumes at the first unfinished step and never pays twice for a
finished one. A paid image answer is kept (and booked, core.spending) the moment it arrives,
before it is validated. Who retries what, and how often, is written in core.openrouter.

A paid image always reaches review: when the quality check cannot be made (its answers are not
valid, the cap is reached, the provider keeps failing), the image goes on marked "could not
check", with why. A preset whose policy is to regenerate makes one new version automatically
when a check fails; that version is never regenerated again.

A worker holds a short lease on the asset while it works and renews it; a dead worker's lease
runs out, and the redelivered message (or the sweeper, services.assets_requeue_lost) takes over.

The provider's rate limit is a wait, never a failure: a 429 slows every worker's calls of that
model down (core.ratelimit) and the asset's unfinished steps go on in this thread as soon as
the model has a slot again, holding no database connection while they wait. Only when the
message has waited OPENROUTER_RATE_WAIT_SECONDS in all is it sent again for later
(RateLimited), and that delivery is not counted among the asset's attempts. An index that
cannot be searched (Milvus down, its collection missing or being refilled) is a wait too:
the asset stays in "retrieving", looked at again every minute (WaitingForIndex), and fails
with why only after GENERATION_INDEX_WAIT_SECONDS.

Why wait in the thread rather than send the message again at once: the wait is short (a
Retry-After of seconds, or the next slot to come free), the asset keeps its lease and its place
ahead of newer work, and a waiting thread costs a little memory, not a connection; a message
sent again costs a broker round trip, a claim and its row lock, and arrives after a fixed delay
instead of when a slot is free. The budget keeps a message well inside its time limit.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image, ImageStat, UnidentifiedImageError

from catalog.models import Product
from catalog.vector_index import IndexUnavailable
from core import ratelimit
from core.models import ProviderCall
from core.spending import (
    SpendingCapReached,
    overrun,
    paid_call,
    spend_book,
    spending_cap,
    subject_costs,
)
from generation.answers import ImageAnswer, answer_discard, answer_keep, answer_load
from generation.models import (
    AssetReference,
    AssetStatus,
    GeneratedAsset,
    GenerationBatch,
    Lane,
    QAPolicy,
    QAStatus,
)
from generation.providers import (
    CHECK_LABELS,
    ImageRequest,
    ProductBrief,
    ProviderError,
    QualityReport,
    QualityRequest,
    ReferenceImage,
    Stage,
    StyleRequest,
    get_image_generator,
    get_quality_checker,
    get_style_analyst,
)
from generation.references import Reference, no_references_reason, request_references
from generation.renditions import renditions_make
from generation.services import asset_next_version
from generation.sizes import pixel_size, ratio_value
from generation.spending import analysis_price, image_call_price, qa_price
from generation.transitions import IllegalTransition, asset_transition

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
INDEX_RETRY_SECONDS = 60  # how often an asset waiting for the index looks again
RATIO_TOLERANCE = 0.04  # the model's own pixel sizes differ from the exact ratio by up to ~3 %


class RetryLater(Exception):
    """A transient failure: run the asset again after `delay` seconds."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay


class SendLater(Exception):
    """Not a failure: send the asset's message again after `delay` seconds, as a fresh
    message (not one of Dramatiq's counted retries), and not as one of the asset's attempts."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay


class RateLimited(SendLater):
    """The provider's rate limit outlasted the message's wait: send it again after `delay`
    seconds. Not a failed attempt."""


class WaitingForIndex(SendLater):
    """The index cannot be searched yet (Milvus down, its collection missing or being
    filled): the asset waits, retried every INDEX_RETRY_SECONDS, for up to
    GENERATION_INDEX_WAIT_SECONDS. Not a failed attempt."""


class GenerationFailed(Exception):
    """A failure that retrying will not fix; the message is shown on the asset."""


class BatchStopped(Exception):
    """The asset's batch was stopped (spending cap, overcharge): no paid call may start."""


def asset_run(*, asset_id: int, worker: str) -> None:
    """Run the unfinished steps of one asset. Duplicate messages are no-ops.

    Raises RetryLater for transient failures (the actor turns it into a delayed retry).
    """
    asset = _claim(asset_id, worker)
    if asset is None:
        return
    interactive = asset.lane == Lane.INTERACTIVE
    with _lease_kept(asset, worker), ratelimit.turns(interactive=interactive):
        try:
            _steps(asset, worker)
        except SpendingCapReached as exc:
            _stop_batch(asset, str(exc), worker)
        except BatchStopped as exc:
            _fail(asset, str(exc), worker)
        except GenerationFailed as exc:
            _fail(asset, str(exc), worker)
        except ProviderError as exc:
            if not exc.retryable:
                _fail(asset, str(exc), worker)
            elif exc.status == 429:
                _wait_later(asset, str(exc), worker, exc.retry_after)
            else:
                _retry_or_fail(asset, str(exc), worker, exc.retry_after)
        except IndexUnavailable as exc:
            _wait_for_index(asset, str(exc), worker)
        except IllegalTransition as exc:  # someone else moved it on (a duplicate message)
            logger.info("asset %s: %s", asset_id, exc)
        except Exception as exc:
            logger.exception("asset %s failed unexpectedly", asset_id)
            _retry_or_fail(asset, f"{type(exc).__name__}: {exc}", worker, None)
        finally:
            _note_rate_wait(asset)


def _note_rate_wait(asset: GeneratedAsset) -> None:
    """Add what this delivery's calls waited for the rate limit to the asset (the batch page
    shows the rate limit's share of the drop's time)."""
    if waited := ratelimit.turns_waited():
        try:
            GeneratedAsset.objects.filter(pk=asset.pk).update(
                rate_wait_seconds=F("rate_wait_seconds") + waited
            )
        except DatabaseError:  # a figure for the batch page: never worth the delivery's outcome
            logger.warning("could not add the rate limit's wait to asset %s", asset.pk)


def _steps(asset: GeneratedAsset, worker: str) -> None:
    """The unfinished steps, in order; after a 429 they go on from where it stopped once the
    model has a slot again (the limiter makes the next call wait), until the message's wait
    budget is spent."""
    while True:
        try:
            if asset.retrieved_at is None:
                _retrieve(asset, worker)
            if not asset.style_prompt:
                _analyse(asset, worker)
            if asset.staged and not asset.scene_image and not asset.image:
                _make_scene(asset, worker)
            if not asset.image:
                _generate(asset, worker)
            _check_quality(asset, worker)
            return
        except ProviderError as exc:
            if exc.status != 429 or not exc.retryable or not ratelimit.waits_left():
                raise
            logger.info("asset %s waits for its turn: %s", asset.pk, exc)


def _lease() -> timedelta:
    return timedelta(seconds=settings.GENERATION_CLAIM_LEASE_SECONDS)


def _claim(asset_id: int, worker: str) -> GeneratedAsset | None:
    with transaction.atomic():
        asset = GeneratedAsset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None or asset.status not in AssetStatus.running():
            return None  # deleted, finished or failed: a duplicate or late message
        now = timezone.now()
        if asset.claimed_by and asset.claimed_at and now - asset.claimed_at < _lease():
            # Another worker holds it. Look again once its lease ends, in case it died.
            raise RetryLater(
                f"asset {asset_id} is being generated by {asset.claimed_by}",
                delay=(asset.claimed_at + _lease() - now).total_seconds() + 1,
            )
        asset.claimed_by, asset.claimed_at, asset.retry_at = worker, now, None
        asset.attempts += 1
        asset.save(update_fields=["claimed_by", "claimed_at", "retry_at", "attempts", "updated_at"])
    return asset


@contextmanager
def _lease_kept(asset: GeneratedAsset, worker: str) -> Iterator[None]:
    """Renew the worker's lease on the asset every third of its length while the block runs."""
    done = threading.Event()
    every = settings.GENERATION_CLAIM_LEASE_SECONDS / 3

    def renew():
        try:
            while not done.wait(every):
                GeneratedAsset.objects.filter(pk=asset.pk, claimed_by=worker).update(
                    claimed_at=timezone.now()
                )
                # Closed between renewals: a connection per asset in flight would be dozens.
                if not connection.allow_thread_sharing:  # tests share one between threads
                    connection.close()
        except Exception:  # noqa: BLE001 - the database is away: the lease simply runs out
            logger.warning("could not renew the lease on asset %s", asset.pk, exc_info=True)
        finally:
            if not connection.allow_thread_sharing:  # tests share one connection between threads
                connection.close()

    keeper = threading.Thread(target=renew, name=f"lease-{asset.pk}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


def _move(asset: GeneratedAsset, status: str, worker: str) -> None:
    """Into the step's status, unless a redelivered message finds it there already."""
    if asset.status != status:
        asset_transition(asset, status, worker)


def _check_batch(asset: GeneratedAsset) -> None:
    """Before a paid call: a stopped batch starts none."""
    batch = GenerationBatch.objects.only("stopped_at", "note").get(pk=asset.batch_id)
    if batch.stopped_at is not None:
        raise BatchStopped(f"Batch {batch.pk} was stopped: {batch.note}")


def _costs(asset: GeneratedAsset) -> dict:
    """The asset's cost and usage fields, from its rows in the spending ledger."""
    cost, usage = subject_costs(asset.ledger_subject)
    return {"cost": cost, "usage": usage}


def _after_paid(asset: GeneratedAsset, call: ProviderCall, worker: str) -> None:
    """A provider that charged more than was reserved stops the batch before its next paid
    call, when a cap is set; the difference is booked already."""
    extra = overrun(call)
    if extra > 0 and spending_cap() is not None:
        _stop(
            asset.batch_id,
            f"The provider charged ${call.cost} for a call ${call.reserved} "
            f"was reserved for ({call.get_kind_display().lower()} of {asset}); "
            "the batch stopped so the price table can be checked.",
            worker,
        )


def _timed(asset: GeneratedAsset, step: str, started: float) -> dict:
    return {**asset.timings, step: round(time.monotonic() - started, 3)}


def _brief(product: Product) -> ProductBrief:
    return ProductBrief(
        sku=product.sku,
        category=product.category,
        name=product.name,
        color=product.color,
        style=product.style,
        season=product.season,
        description=product.description,
        prompt_hint=product.prompt_hint,
    )


def _read(field_file) -> bytes:
    with field_file.storage.open(field_file.name, "rb") as handle:
        return handle.read()


def _retrieve(asset: GeneratedAsset, worker: str) -> None:
    _move(asset, AssetStatus.RETRIEVING, worker)
    started = time.monotonic()
    result = request_references(
        product=asset.product, preset=asset.preset, reference_count=asset.reference_count
    )
    references = result.references
    if not references:
        raise GenerationFailed(no_references_reason(asset.product))
    with transaction.atomic():
        asset.references.all().delete()
        AssetReference.objects.bulk_create(
            [_recorded(asset, rank, ref) for rank, ref in enumerate(references, start=1)]
        )
        asset_transition(
            asset,
            AssetStatus.ANALYSING,
            worker,
            note=result.note,
            retrieved_at=timezone.now(),
            retrieval_note=result.note,
            timings=_timed(asset, "retrieve", started),
        )


def _recorded(asset: GeneratedAsset, rank: int, ref: Reference) -> AssetReference:
    proven = ref.proven
    return AssetReference(
        asset=asset,
        kind=ref.kind,
        product=ref.product,
        source_asset=proven.asset if proven else None,
        rank=rank,
        score=ref.score,
        dense_rank=ref.dense_rank,
        sparse_rank=ref.sparse_rank,
        weight=ref.weight,
        impressions=proven.impressions if proven else None,
        clicks=proven.clicks if proven else None,
        baseline_ctr=proven.baseline_ctr if proven else None,
    )


def _references(asset: GeneratedAsset, limit: int | None = None) -> list[ReferenceImage]:
    """The recorded references with their images; a proven image deleted since it was chosen
    is left out (the bestseller photos still carry the style)."""
    recorded = asset.references.select_related("product", "source_asset")[:limit]
    return [
        ReferenceImage(
            product=_brief(ref.product),
            content=_read(ref.image_file),
            rank=ref.rank,
            score=ref.score,
            kind=ref.kind,
            weight=ref.weight,
        )
        for ref in recorded
        if ref.image_file
    ]


def _analyse(asset: GeneratedAsset, worker: str) -> None:
    _move(asset, AssetStatus.ANALYSING, worker)
    analyst = get_style_analyst()
    request = StyleRequest(product=_brief(asset.product), references=_references(asset))
    started = time.monotonic()
    if analyst.is_offline:
        _analysed(asset, worker, analyst.analyse(request), started)
        return
    _check_batch(asset)
    with paid_call(
        kind=ProviderCall.Kind.ANALYSIS,
        model=analyst.model,
        subject=asset.ledger_subject,
        key=f"{asset.ledger_subject}:analysis:{asset.attempts}",
        worst_case=analysis_price(),
        owner=worker,
    ) as book:
        result = analyst.analyse(request)
        with transaction.atomic():  # the answer and its booking, together
            call = book(cost=result.cost, usage=result.usage)
            _analysed(asset, worker, result, started)
    _after_paid(asset, call, worker)


def _analysed(asset: GeneratedAsset, worker: str, result, started: float) -> None:
    asset_transition(
        asset,
        AssetStatus.GENERATING,
        worker,
        style_prompt=result.prompt,
        analyst_model=result.model,
        offline=result.offline,
        timings=_timed(asset, "analyse", started),
        **_costs(asset),
    )


def _image_request(asset: GeneratedAsset, stage: str) -> ImageRequest:
    width, height = pixel_size(asset.aspect_ratio, asset.size_tier)
    return ImageRequest(
        product=_brief(asset.product),
        product_image=_read(asset.product.image),
        references=[] if stage == Stage.PRODUCT else _references(asset),
        style_prompt=asset.style_prompt,
        channel_name=asset.preset.name,
        channel_rules=asset.preset.rules,
        white_background=asset.preset.white_background,
        aspect_ratio=asset.aspect_ratio,
        size_tier=asset.size_tier,
        width=width,
        height=height,
        feedback=asset.feedback,
        variant=asset.variant,
        stage=stage,
        scene_image=_read(asset.scene_image) if stage == Stage.PRODUCT else None,
        overlay_text=asset.overlay_text,
        language=asset.language,
    )


def _file_name(asset: GeneratedAsset, image_format: str, suffix: str = "") -> str:
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[image_format]
    return f"{asset.product.sku}-preset{asset.preset_id}-v{asset.version}-{asset.pk}{suffix}.{extension}"


def _make_scene(asset: GeneratedAsset, worker: str) -> None:
    """A staged preset's first stage: the empty scene, kept on the asset for the second."""
    _move(asset, AssetStatus.GENERATING, worker)
    started = time.monotonic()
    answer, image_format, _, _ = _image(asset, worker, "scene", _image_request(asset, Stage.SCENE))
    asset.scene_image.save(
        _file_name(asset, image_format, "-scene"), ContentFile(answer.content), save=False
    )
    asset.timings = _timed(asset, "scene", started)
    GeneratedAsset.objects.filter(pk=asset.pk).update(
        scene_image=asset.scene_image.name,
        timings=asset.timings,
        updated_at=timezone.now(),
        **_costs(asset),
    )
    answer_discard(asset, "scene")


def _generate(asset: GeneratedAsset, worker: str) -> None:
    _move(asset, AssetStatus.GENERATING, worker)
    started = time.monotonic()
    stage = Stage.PRODUCT if asset.staged else Stage.SINGLE
    answer, image_format, width, height = _image(
        asset, worker, "image", _image_request(asset, stage)
    )
    asset.image.save(_file_name(asset, image_format), ContentFile(answer.content), save=False)
    asset_transition(
        asset,
        AssetStatus.CHECKING,
        worker,
        image=asset.image.name,
        **renditions_make(asset, answer.content),
        width=width,
        height=height,
        offline=asset.offline or answer.offline,
        timings=_timed(asset, "generate", started),
        last_error="",
    )
    transaction.on_commit(lambda: answer_discard(asset))


STEP_KINDS = {"image": ProviderCall.Kind.IMAGE, "scene": ProviderCall.Kind.SCENE}


def _image(
    asset: GeneratedAsset, worker: str, step: str, request: ImageRequest
) -> tuple[ImageAnswer, str, int, int]:
    """A validated image for a step ("image", or "scene"): the answer an earlier delivery
    paid for and kept, else a new one. An unusable paid answer is booked with why."""
    answer = answer_load(asset, step)
    if answer is not None:  # paid for by an earlier delivery: finish it, never pay again
        spend_book(
            key=answer.key,
            kind=STEP_KINDS[step],
            subject=asset.ledger_subject,
            model=answer.model,
            cost=answer.cost_decimal,
            price=Decimal(answer.price),
            usage=answer.usage,
        )
    else:
        answer = _image_answer(asset, worker, step, request)
    if step == "image":
        _record_answer(asset, answer)
    try:
        image_format, width, height = validate_image(answer.content, asset.aspect_ratio)
    except GenerationFailed as exc:
        if answer.key:  # paid for and unusable: the ledger says why
            ProviderCall.objects.filter(key=answer.key).update(rejected_reason=str(exc))
            GeneratedAsset.objects.filter(pk=asset.pk).update(**_costs(asset))
        answer_discard(asset, step)
        raise
    return answer, image_format, width, height


def _image_answer(
    asset: GeneratedAsset, worker: str, step: str, request: ImageRequest
) -> ImageAnswer:
    """Ask the image model; a paid answer is kept and booked before it is looked at."""
    generator = get_image_generator()
    if generator.is_offline:
        return ImageAnswer.of(generator.generate(request))
    _check_batch(asset)
    price = image_call_price(asset.size_tier, request.input_images())
    key = f"{asset.ledger_subject}:{step}:{asset.attempts}"
    with paid_call(
        kind=STEP_KINDS[step],
        model=generator.model,
        subject=asset.ledger_subject,
        key=key,
        worst_case=price,
        owner=worker,
    ) as book:
        result = generator.generate(request)
        usage = {**result.usage, "input_images": request.input_images()}
        answer = ImageAnswer.of(
            result,
            key=key,
            price=str(price),
            usage=usage,
            cost=None if result.cost is None else str(result.cost),
        )
        answer_keep(asset, answer, step)  # first: from here on a crash loses nothing paid for
        call = book(cost=result.cost, usage=usage)
    _after_paid(asset, call, worker)
    return answer


# --- quality checks ------------------------------------------------------------------------


def _check_quality(asset: GeneratedAsset, worker: str) -> None:
    """Check the stored image; it goes on to review with the verdict, or with why there is none."""
    _move(asset, AssetStatus.CHECKING, worker)
    checker = get_quality_checker()
    request = QualityRequest(
        product=_brief(asset.product),
        product_image=_read(asset.product.image),
        image=_read(asset.image),
        references=_references(asset),
        channel_name=asset.preset.name,
        channel_rules=asset.preset.rules,
        white_background=asset.preset.white_background,
        overlay_text=asset.overlay_text,
        language=asset.language,
    )
    started = time.monotonic()
    if checker.is_offline:
        _checked(asset, worker, checker.check(request), started)
        return
    # Calls this delivery made already (before a 429 it waited out) keep their keys and count.
    prefix = f"{asset.ledger_subject}:qa:{asset.attempts}."
    made = list(
        ProviderCall.objects.filter(key__startswith=prefix).values_list(
            "rejected_reason", flat=True
        )
    )
    errors = [reason for reason in made if reason]
    for call_number in range(len(made) + 1, settings.QA_MAX_CALLS + 1):
        try:
            _check_batch(asset)
            key = f"{prefix}{call_number}"
            with paid_call(
                kind=ProviderCall.Kind.QA,
                model=checker.model,
                key=key,
                subject=asset.ledger_subject,
                worst_case=qa_price(),
                owner=worker,
            ) as book:
                report = checker.check(request)
                with transaction.atomic():  # the verdict and its booking, together
                    call = book(cost=report.cost, usage=report.usage)
                    _checked(asset, worker, report, started)
            _after_paid(asset, call, worker)
            return
        except (SpendingCapReached, BatchStopped) as exc:
            errors.append(str(exc))
            break
        except ProviderError as exc:
            if exc.retryable:
                raise
            errors.append(str(exc))
    _unchecked(
        asset,
        worker,
        f"The quality check gave no usable answer ({len(errors)} call(s)). {errors[-1]}",
    )


def _checked(asset: GeneratedAsset, worker: str, report: QualityReport, started: float) -> None:
    failed = report.failed
    note = (
        "QA passed"
        if not failed
        else "QA flagged: " + ", ".join(check.name.replace("_", " ") for check in failed)
    )
    with transaction.atomic():
        if failed and asset.preset.qa_policy == QAPolicy.REGENERATE and not asset.regenerated_by_qa:
            new = asset_next_version(
                asset=asset,
                lane=asset.lane,  # part of its batch's work, in its batch's lane
                regenerated_by_qa=True,
                feedback=qa_feedback(report),
                note=f"regenerated automatically: QA flagged v{asset.version}",
            )
            note += f"; regenerated automatically as v{new.version}"
        asset_transition(
            asset,
            AssetStatus.IN_REVIEW,
            worker,
            note=note,
            qa_status=QAStatus.FLAGGED if failed else QAStatus.PASSED,
            qa_checks=[check.as_dict() for check in report.checks],
            qa_model=report.model,
            qa_note="",
            claimed_by="",
            claimed_at=None,
            timings=_timed(asset, "check", started),
            last_error="",
            **_costs(asset),
        )


def qa_feedback(report: QualityReport) -> str:
    """What a failed check asks of the next version, in the words of the check."""
    return "Fix what the automatic quality check found: " + " ".join(
        f"{CHECK_LABELS.get(check.name, check.name)} failed ({check.note.rstrip('.')})."
        for check in report.failed
    )


def _unchecked(asset: GeneratedAsset, worker: str, reason: str) -> None:
    """To review without a verdict: a person looks, knowing why no check was made."""
    try:
        asset_transition(
            asset,
            AssetStatus.IN_REVIEW,
            worker,
            note=reason,
            qa_status=QAStatus.ERROR,
            qa_checks=[],
            qa_note=reason,
            claimed_by="",
            claimed_at=None,
            last_error="",
            **_costs(asset),
        )
    except IllegalTransition as exc:  # finished meanwhile by a duplicate message
        logger.info("asset %s: %s", asset.pk, exc)


def _record_answer(asset: GeneratedAsset, answer: ImageAnswer) -> None:
    asset.generation_prompt, asset.image_model, asset.model_text = (
        answer.prompt,
        answer.model,
        answer.text,
    )
    for name, value in _costs(asset).items():
        setattr(asset, name, value)
    asset.save(
        update_fields=[
            "generation_prompt",
            "image_model",
            "model_text",
            "cost",
            "usage",
            "updated_at",
        ]
    )


def validate_image(content: bytes, aspect_ratio: str) -> tuple[str, int, int]:
    """Check a returned image: decodes, allowed format, requested ratio, not blank."""
    try:
        image = Image.open(io.BytesIO(content))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise GenerationFailed(
            f"The model returned an image that cannot be decoded ({exc})."
        ) from None
    if image.format not in ALLOWED_FORMATS:
        raise GenerationFailed(
            f"The model returned a {image.format} image; expected PNG, JPEG or WebP."
        )
    width, height = image.size
    wanted = ratio_value(aspect_ratio)
    if abs(width / height - wanted) / wanted > RATIO_TOLERANCE:
        raise GenerationFailed(
            f"The model returned {width}×{height} px, not the requested {aspect_ratio}."
        )
    extrema = ImageStat.Stat(image.convert("L").resize((64, 64))).stddev[0]
    if extrema < 2:
        raise GenerationFailed("The model returned a blank image.")
    return image.format, width, height


# --- failures ------------------------------------------------------------------------------


def _fail(asset: GeneratedAsset, reason: str, worker: str) -> None:
    try:
        asset_transition(
            asset,
            AssetStatus.FAILED,
            worker,
            note=reason,
            failure_reason=reason,
            last_error=reason,
            claimed_by="",
            claimed_at=None,
            **_costs(asset),
        )
    except IllegalTransition as exc:  # finished meanwhile by a duplicate message
        logger.info("asset %s not failed: %s", asset.pk, exc)


def _retry_or_fail(
    asset: GeneratedAsset, error: str, worker: str, retry_after: float | None
) -> None:
    attempts = asset.attempts - asset.rate_waits  # deliveries that waited for the rate limit
    if attempts >= settings.GENERATION_MAX_ATTEMPTS:
        reason = f"Gave up after {attempts} attempts. Last error: {error}"
        if asset.status == AssetStatus.CHECKING:  # the image is made: it goes on unchecked
            _unchecked(asset, worker, reason)
        else:
            _fail(asset, reason, worker)
        return
    delay = retry_after if retry_after is not None else min(10 * 2 ** (attempts - 1), 600)
    _release(asset, error, delay)
    raise RetryLater(error, delay=delay)


def _wait_later(asset: GeneratedAsset, error: str, worker: str, retry_after: float | None) -> None:
    """The message waited its budget for the rate limit: it is sent again for when the model
    is expected free, and this delivery is not an attempt."""
    delay = max(retry_after or 0.0, 1.0)
    GeneratedAsset.objects.filter(pk=asset.pk).update(rate_waits=F("rate_waits") + 1)
    _release(asset, f"Waiting for the provider's rate limit: {error}", delay)
    raise RateLimited(error, delay=delay)


def _wait_for_index(asset: GeneratedAsset, error: str, worker: str) -> None:
    """The index cannot be searched: the asset waits for it in the "retrieving" step, its
    message sent again every INDEX_RETRY_SECONDS, and no attempt is counted (nothing is
    wrong with the asset or the provider). After GENERATION_INDEX_WAIT_SECONDS it fails
    with why, and can be regenerated once the index is back."""
    since = _retrieving_since(asset)
    waited = (timezone.now() - since).total_seconds()
    limit = settings.GENERATION_INDEX_WAIT_SECONDS
    if waited >= limit:
        _fail(
            asset,
            f"The index could not be searched for {round(waited / 60)} minutes. "
            f"{error.rstrip('.')}. "
            "Regenerate this image once the index status page shows the index whole.",
            worker,
        )
        return
    GeneratedAsset.objects.filter(pk=asset.pk).update(rate_waits=F("rate_waits") + 1)
    _release(
        asset,
        f"Waiting for the index (looked again every {INDEX_RETRY_SECONDS} s, for up to "
        f"{round(limit / 60)} minutes): {error}",
        INDEX_RETRY_SECONDS,
    )
    raise WaitingForIndex(error, delay=INDEX_RETRY_SECONDS)


def _retrieving_since(asset: GeneratedAsset):
    """When this version of the asset entered the retrieving step (its wait began); the
    sweeper's notes that it sent a lost message again do not start the wait anew."""
    entered = (
        asset.events.filter(to_status=AssetStatus.RETRIEVING)
        .exclude(from_status=AssetStatus.RETRIEVING)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return entered or timezone.now()


def _release(asset: GeneratedAsset, error: str, delay: float) -> None:
    """Give up the lease until the next delivery, due in `delay` seconds."""
    GeneratedAsset.objects.filter(pk=asset.pk).update(
        last_error=error,
        claimed_by="",
        claimed_at=None,
        retry_at=timezone.now() + timedelta(seconds=delay),
        updated_at=timezone.now(),
    )


def _stop(batch_id: int, reason: str, worker: str) -> None:
    """Stop a batch: no paid call starts after, and its unstarted assets fail with the reason."""
    stopped = GenerationBatch.objects.filter(pk=batch_id, stopped_at__isnull=True).update(
        stopped_at=timezone.now(), note=reason
    )
    if not stopped:
        return  # stopped already, with its first reason
    for other in GeneratedAsset.objects.filter(
        batch_id=batch_id, status=AssetStatus.QUEUED, claimed_by=""
    ):
        _fail(other, reason, worker)


def _stop_batch(asset: GeneratedAsset, reason: str, worker: str) -> None:
    """The spending cap is reached: this asset and the batch's unstarted ones stop here."""
    _fail(asset, reason, worker)
    _stop(asset.batch_id, reason, worker)
