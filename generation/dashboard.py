"""The admin's home page: what needs attention today, the month's spend against the cap, the
provider's health and the last publications (templates/admin/dashboard.html).

Each panel is built only for a user who may open the admin list its figures link to, so a
merchandiser without the ledger's view permission sees no money. The page costs a fixed number
of queries whatever the data: counts are grouped in one query per model, and each panel reads
at most SHOWN rows with what they show (select_related).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from catalog.importer.jobs import job_progress
from catalog.models import CatalogImport
from core.models import ProviderCall, SpendReservation
from core.ratelimit import limiter_reachable, limiter_state
from core.spending import current_month, reserved_now, spending_cap
from generation.admin import batch_speed, duration
from generation.forms import usd
from generation.models import AssetStatus, GeneratedAsset
from generation.selectors import review_queue, reviewers, running_batches
from generation.views import published_url

SHOWN = 5  # rows a panel lists; its figure links to the whole list
HEALTH_WINDOW = timedelta(hours=24)  # what "recent" means for the provider's answers
SPEND_HIGH = Decimal("0.8")  # the share of the cap from which the bar warns

ASSETS = "admin:generation_generatedasset_changelist"


def admin_list(name: str, **filters) -> str:
    """The admin list `name` narrowed by `filters` (its own query-string parameters)."""
    url = reverse(name)
    return f"{url}?{urlencode(filters)}" if filters else url


def asset_url(asset: GeneratedAsset) -> str:
    return reverse("admin:generation_generatedasset_change", args=[asset.pk])


def dashboard_panels(*, user) -> dict:
    """Every panel the user may see, by name (absent: not allowed); `attention` says whether
    any of the "needs attention" panels is there."""
    panels = {}
    if user.has_perm("generation.view_generatedasset"):
        counts = asset_counts()
        panels["review"] = review_panel(counts)
        panels["failed"] = failed_panel(counts)
        panels["publications"] = publications_panel(counts, user)
    if user.has_perm("generation.view_generationbatch"):
        panels["batches"] = batches_panel()
    if user.has_perm("catalog.import_products") or user.has_perm("catalog.view_catalogimport"):
        panels["imports"] = imports_panel()
    if user.has_perm("core.view_monthlyspend"):
        panels["money"] = money_panel()
    if user.has_perm("core.view_providercall"):
        panels["provider"] = provider_panel()
    panels["attention"] = any(name in panels for name in ("review", "failed", "batches", "imports"))
    return panels


def asset_counts() -> dict[str, int]:
    """Images in review, failed and published, in one query (the status index)."""
    statuses = (AssetStatus.IN_REVIEW, AssetStatus.FAILED, AssetStatus.PUBLISHED)
    rows = (
        GeneratedAsset.objects.filter(status__in=statuses)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return {status: 0 for status in statuses} | dict(rows)


# --- needs attention -----------------------------------------------------------------------


def review_panel(counts: dict[str, int]) -> dict:
    """Images waiting for a decision, the oldest first, and under the four-eyes rule how many
    each reviewer may decide (not those of batches they requested)."""
    total = counts[AssetStatus.IN_REVIEW]
    oldest = review_queue().select_related("product", "preset")[:SHOWN]
    return {
        "count": total,
        "url": admin_list(ASSETS, status=AssetStatus.IN_REVIEW),
        "gallery_url": reverse("admin:generation_generatedasset_gallery"),
        "oldest": [{"asset": asset, "url": asset_url(asset)} for asset in oldest],
        "reviewers": reviewer_counts(total) if settings.REVIEW_FOUR_EYES else None,
    }


def reviewer_counts(total: int) -> list[dict]:
    """Per reviewer, the images in review they may decide: all but their own batches'."""
    requested = dict(
        review_queue().order_by().values_list("batch__requested_by").annotate(n=Count("pk"))
    )
    return [
        {
            "name": user.get_full_name() or user.get_username(),
            "count": total - requested.get(user.pk, 0),
            "url": admin_list(ASSETS, status=AssetStatus.IN_REVIEW, reviewable_by=user.pk),
        }
        for user in reviewers()
    ]


def failed_panel(counts: dict[str, int]) -> dict:
    """Images that could not be made, the latest first, with what went wrong."""
    latest = (
        GeneratedAsset.objects.filter(status=AssetStatus.FAILED)
        .select_related("product", "preset")
        .order_by("-updated_at", "-pk")[:SHOWN]
    )
    return {
        "count": counts[AssetStatus.FAILED],
        "url": admin_list(ASSETS, status=AssetStatus.FAILED),
        "latest": [
            {
                "asset": asset,
                "url": asset_url(asset),
                "reason": asset.failure_reason or asset.last_error or "No reason was recorded.",
            }
            for asset in latest
        ],
    }


def batches_panel() -> dict:
    """Batches still making images: how far each is and the time left at its pace."""
    running = running_batches()
    batches = running.with_progress().select_related("requested_by").order_by("created_at")
    rows = []
    for batch in batches[:SHOWN]:
        progress = batch.progress()  # from the annotations: no query
        rows.append(
            {
                "batch": batch,
                "url": reverse("admin:generation_generationbatch_change", args=[batch.pk]),
                "finished": progress.finished,
                "failed": progress.failed,
                "total": progress.total,
                "time_left": batch_speed(batch, progress)[1],
            }
        )
    return {
        "count": running.count(),
        "url": admin_list("admin:generation_generationbatch_changelist", running="yes"),
        "batches": rows,
    }


def imports_panel() -> dict:
    """Imports a worker is checking or writing, and those waiting for their confirmation."""
    active = (*CatalogImport.RUNNING, CatalogImport.State.CHECKED)
    by_state = dict(
        CatalogImport.objects.filter(state__in=active)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    jobs = (
        CatalogImport.objects.filter(state__in=active)
        .select_related("requested_by")
        .order_by("created_at")[:SHOWN]
    )
    changelist = "admin:catalog_catalogimport_changelist"
    rows = []
    for job in jobs:
        progress = job_progress(job)
        rows.append(
            {
                "job": job,
                "url": reverse("admin:catalog_catalogimport_change", args=[job.pk]),
                "progress": progress,
                "time_left": duration(progress["seconds_left"])
                if progress["seconds_left"] is not None
                else "",
            }
        )
    return {
        "running": sum(by_state.get(state, 0) for state in CatalogImport.RUNNING),
        "running_url": admin_list(changelist, state__in=",".join(CatalogImport.RUNNING)),
        "waiting": by_state.get(CatalogImport.State.CHECKED, 0),
        "waiting_url": admin_list(changelist, state__exact=CatalogImport.State.CHECKED),
        "jobs": rows,
    }


# --- money ---------------------------------------------------------------------------------


def money_panel() -> dict:
    """This month's spend and what calls in flight hold, against MONTHLY_SPENDING_CAP."""
    month = current_month()
    spent = month.spent if month else Decimal("0")
    reserved = reserved_now(month) if month else Decimal("0")
    cap = spending_cap()
    if cap is None:
        share = None
    elif cap > 0:
        share = (spent + reserved) / cap
    else:
        share = Decimal(1)  # a cap of 0 allows no paid call at all
    return {
        "month": timezone.localdate(),
        "spent": usd(spent),
        "reserved": usd(reserved) if reserved else "",
        "cap": usd(cap) if cap is not None else "",
        "left": usd(max(cap - spent - reserved, Decimal("0"))) if cap is not None else "",
        "percent": min(round(share * 100), 100) if share is not None else None,
        "level": spend_level(share),
        "url": admin_list("admin:core_monthlyspend_changelist"),
        "calls_url": admin_list("admin:core_providercall_changelist", month__id__exact=month.pk)
        if month
        else admin_list("admin:core_providercall_changelist"),
    }


def spend_level(share: Decimal | None) -> str:
    """How the bar is drawn: "over" the cap, "high" from SPEND_HIGH of it, else "ok"."""
    if share is None:
        return ""
    if share >= 1:
        return "over"
    return "high" if share >= SPEND_HIGH else "ok"


# --- the provider's health -----------------------------------------------------------------


def provider_panel() -> dict:
    """The provider's answers of the last day (paid for and then rejected ones with their
    reason), calls that may have been billed without an answer, and each model's 429s and
    limit as the rate limiter holds them (or that the limiter cannot be reached)."""
    since = timezone.now() - HEALTH_WINDOW
    calls = "admin:core_providercall_changelist"
    figures = ProviderCall.objects.filter(created_at__gte=since).aggregate(
        answers=Count("pk"), rejected=Count("pk", filter=~Q(rejected_reason=""))
    )
    rejected = ProviderCall.objects.exclude(rejected_reason="").order_by("-created_at")[:SHOWN]
    reachable = limiter_reachable()  # limiter_state() is empty both when away and when unused
    return {
        "answers": figures["answers"],
        "answers_url": admin_list(calls, created_at__gte=since.isoformat()),
        "rejected": figures["rejected"],
        "rejected_url": admin_list(calls, outcome="rejected", created_at__gte=since.isoformat()),
        "latest_rejected": [
            {
                "call": call,
                "url": reverse("admin:core_providercall_change", args=[call.pk]),
                "reason": Truncator(call.rejected_reason).chars(160),
            }
            for call in rejected
        ],
        "in_doubt": SpendReservation.objects.filter(in_doubt=True).count(),
        "in_doubt_url": admin_list("admin:core_spendreservation_changelist", in_doubt__exact=1),
        "limiter": "off" if reachable is None else "up" if reachable else "down",
        "models": list(limiter_state().values()) if reachable else [],
    }


# --- publications --------------------------------------------------------------------------


def publications_panel(counts: dict[str, int], user) -> dict:
    """The latest published images: product, channel, when, and where each can be seen."""
    latest = (
        GeneratedAsset.objects.filter(status=AssetStatus.PUBLISHED)
        .select_related("product", "preset")
        .order_by("-published_at", "-pk")[:SHOWN]
    )
    may_see_products = user.has_perm("catalog.view_product")
    return {
        "count": counts[AssetStatus.PUBLISHED],
        "url": admin_list(ASSETS, status=AssetStatus.PUBLISHED),
        "latest": [
            {
                "asset": asset,
                "url": asset_url(asset),
                "product_url": reverse("admin:catalog_product_change", args=[asset.product_id])
                if may_see_products
                else "",
                "public_url": published_url(asset) if asset.published_image else "",
            }
            for asset in latest
        ],
    }
