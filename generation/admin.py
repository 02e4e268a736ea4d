"""Promo generation in the admin: channel presets, batches with live progress, and assets.

Batches and assets are provenance: shown read-only. Requests are made from the product list
("Generate promo images", see admin_views); their page lives under the batch admin's URLs.
What generation adds to the catalog's product admin (that action and the published images)
is registered here too, so catalog never imports generation.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import Http404, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from catalog.admin import ProductAdmin, product_label
from catalog.models import Product
from core.display import short_text, short_time
from core.ids import id_parse
from core.ratelimit import limiter_state
from generation.admin_views import can_request_promos, promo_request_page, promo_request_view
from generation.feed_admin import FeedTokenAdmin
from generation.forms import PresetRowForm, usd
from generation.models import (
    AssetStatus,
    ChannelPreset,
    FeedToken,
    GeneratedAsset,
    GenerationBatch,
)
from generation.review_admin import ReviewableByFilter, ReviewAdminMixin, ReviewStatusFilter
from generation.selectors import published_assets, running_batches
from generation.views import published_url

PRE = '<pre style="white-space:pre-wrap;word-break:break-word;max-width:60em">{}</pre>'
THUMBNAIL = '<img src="{}" alt="{}" loading="lazy" style="max-width:{}px;max-height:{}px">'


def offline_badge():
    """Styled by core/static/core/desk.css (a badge that never wraps)."""
    return format_html(
        '<span class="offline-badge" title="{}">{}</span>',
        "Made by the offline providers on this machine: a local preview, not an AI photo",
        "Offline preview",
    )


def asset_thumbnail(asset: GeneratedAsset, size: int = 80):
    """The list rendition (never the full-size image); "—" until there is one."""
    if not asset.thumbnail:
        return "—"
    return format_html(THUMBNAIL, asset.thumbnail.url, asset.product.sku, size, size)


@admin.register(ChannelPreset)
class ChannelPresetAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "aspect_ratio",
        "size_tier",
        "white_background",
        "staged",
        "overlay",
        "qa_policy",
        "is_active",
    )
    list_editable = ("is_active",)
    list_filter = (
        "is_active",
        "white_background",
        "staged",
        "qa_policy",
        "aspect_ratio",
        "use_proven_references",
    )
    search_fields = ("name", "rules")
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Text on the image", ordering="overlay_text")
    def overlay(self, preset: ChannelPreset):
        return short_text(preset.overlay_text, 28)

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=PresetRowForm, **kwargs)


# The Feeds page: the feed's URLs per channel and the tokens that read it (feed_admin).
admin.site.register(FeedToken, FeedTokenAdmin)


# --- batches -------------------------------------------------------------------------------


def batch_progress(batch: GenerationBatch) -> dict:
    """What the batch page shows and its progress endpoint returns, in plain values."""
    progress = batch.progress()
    return {
        "counts": {
            "total": progress.total,
            "finished": progress.finished,
            "failed": progress.failed,
            "running": progress.running,
            "cost": usd(progress.cost),
            **batch_pace(batch, progress),
        },
        "by_status": progress.by_status,
        "note": batch.note,
    }


def batch_pace(batch: GenerationBatch, progress) -> dict[str, str]:
    """How fast the batch goes, as sentences: images finished a minute since it was requested,
    the time left at that pace, the provider's rate limit's share of its assets' step time
    (core.ratelimit counts each asset's waits for a slot), and each model's current limit."""
    per_minute, time_left = batch_speed(batch, progress)
    assets = batch.assets.all()
    step_seconds = waited = 0.0
    for timings, rate_wait in assets.values_list("timings", "rate_wait_seconds"):
        step_seconds += sum(float(v) for v in (timings or {}).values())
        waited += rate_wait
    share = f" ({waited / step_seconds:.0%} of its images' step time)" if step_seconds else ""
    limits = [
        f"{pace.model}: {pace.in_flight} in flight of a limit of {pace.limit:.1f} "
        f"(ceiling {pace.ceiling}), {pace.rate_limited} answers 429"
        + (
            f", paced to {pace.paced_per_minute:.0f} calls a minute (the provider's window)"
            if pace.paced_per_minute
            else ""
        )
        + (f", waiting until {pace.blocked_until:%H:%M:%S} UTC" if pace.blocked_until else "")
        for pace in limiter_state().values()
    ]
    return {
        "throughput": f"{per_minute:.1f} images a minute",
        "time_left": time_left,
        "rate_wait": f"{duration(waited)}{share}",
        "limits": "; ".join(limits) or "no model has been called through the limiter yet",
    }


def batch_speed(batch: GenerationBatch, progress) -> tuple[float, str]:
    """Images finished a minute since the batch was requested, and the time left at that pace
    as a sentence. No query while the batch runs (the dashboard lists running batches)."""
    last = None
    if not progress.running:
        last = batch.assets.aggregate(at=Max("updated_at"))["at"]
    elapsed = ((last or timezone.now()) - batch.created_at).total_seconds()
    per_minute = progress.finished / (elapsed / 60) if elapsed > 0 else 0.0
    left = progress.total - progress.finished - progress.failed
    if not left:
        return per_minute, "none: every image has finished"
    if per_minute:
        return per_minute, f"about {duration(left / per_minute * 60)} at this pace"
    return per_minute, "not known until the first image finishes"


def duration(seconds: float) -> str:
    """ "1 h 05 min", "12 min 30 s", "40 s"."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def batch_assets(batch: GenerationBatch):
    return batch.assets.select_related("product", "preset").order_by(
        "product__sku", "preset__name", "version", "variant"
    )


def asset_row(asset: GeneratedAsset) -> dict:
    """One image of the batch page, as it changes while the batch runs (the page polls it):
    its variant and version tell apart two candidates of the same product and preset."""
    return {
        "id": asset.pk,
        "variant": asset.variant,
        "version": f"v{asset.version}",
        "status": asset.get_status_display(),
        "qa": asset.qa_summary or "—",
        "cost": usd(asset.cost),
        "problem": asset.failure_reason or asset.last_error,
    }


class BatchRunningFilter(admin.SimpleListFilter):
    """Batches still making images, or finished ones (the dashboard links to the first)."""

    title = "state"
    parameter_name = "running"

    def lookups(self, request, model_admin):
        return [("yes", "Still making images"), ("no", "Finished")]

    def queryset(self, request, queryset):
        running = running_batches().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=running)
        if self.value() == "no":
            return queryset.exclude(pk__in=running)
        return queryset


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created",
        "requested_by",
        "size_tier",
        "preset_names",
        "progress_tag",
        "failed_count",
        "estimated_cost_usd",
        "cost_so_far",
    )
    list_display_links = ("id", "created")
    list_filter = (BatchRunningFilter, "size_tier", "created_at")
    list_select_related = ("requested_by",)
    # The note (why the batch stopped early) is shown with the progress, where it matters.
    fields = (
        "requested_by",
        "created_at",
        "size_tier",
        "reference_count",
        "preset_names",
        "estimated_cost_usd",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # One query for the whole list: the counts ride along instead of progress() per row.
        return super().get_queryset(request).prefetch_related("presets").with_progress()

    def has_add_permission(self, request) -> bool:
        return False  # batches are made by requests from the product list or the command

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Requested", ordering="created_at")
    def created(self, batch: GenerationBatch):
        return short_time(batch.created_at)

    @admin.display(description="Presets")
    def preset_names(self, batch: GenerationBatch):
        return short_text(", ".join(preset.name for preset in batch.presets.all()), 40)

    @admin.display(description="Progress")
    def progress_tag(self, batch: GenerationBatch) -> str:
        progress = batch.progress()
        return f"{progress.finished}/{progress.total}"

    @admin.display(description="Failed", ordering=f"n_{AssetStatus.FAILED}")
    def failed_count(self, batch: GenerationBatch) -> int:
        return batch.progress().failed

    @admin.display(description="Estimated cost", ordering="estimated_cost")
    def estimated_cost_usd(self, batch: GenerationBatch) -> str:
        return usd(batch.estimated_cost)

    @admin.display(description="Cost so far", ordering="asset_cost")
    def cost_so_far(self, batch: GenerationBatch) -> str:
        return usd(batch.progress().cost)

    def get_urls(self):
        # Before the default URLs: their "<path:object_id>/" would swallow these.
        return [
            path(
                "request/",
                self.admin_site.admin_view(self.request_view),
                name="generation_generationbatch_request",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="generation_generationbatch_progress",
            ),
        ] + super().get_urls()

    def request_view(self, request):
        return promo_request_view(request, admin_site=self.admin_site)

    def _visible_batch(self, request, object_id) -> GenerationBatch:
        batch = self.get_object(request, object_id)
        if batch is None:
            raise Http404("No such batch.")
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        return batch

    def progress_view(self, request, object_id):
        batch = self._visible_batch(request, object_id)
        return JsonResponse(
            {**batch_progress(batch), "assets": [asset_row(a) for a in batch_assets(batch)]}
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, object_id)
        if batch is not None and self.has_view_permission(request, batch):
            progress = batch_progress(batch)
            extra_context = {
                **(extra_context or {}),
                "progress": progress,
                "status_counts": [
                    (value, label, progress["by_status"][value])
                    for value, label in AssetStatus.choices
                ],
                "asset_rows": [
                    (
                        asset,
                        asset_row(asset),
                        asset_thumbnail(asset, 64),
                        product_label(asset.product, chars=30),
                    )
                    for asset in batch_assets(batch)
                ],
                "estimated_cost": usd(batch.estimated_cost),
                "progress_url": reverse(
                    "admin:generation_generationbatch_progress", args=[batch.pk]
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)


# --- assets --------------------------------------------------------------------------------


class RecentBatchFilter(admin.SimpleListFilter):
    """The latest batches, and the one chosen: listing thousands of batches would make the page
    slow and the list useless. Any batch filters by its id (?batch__id__exact=…)."""

    title = "batch"
    parameter_name = "batch__id__exact"  # the URL of Django's own related filter
    SHOWN = 15

    def lookups(self, request, model_admin):
        batches = list(GenerationBatch.objects.order_by("-pk")[: self.SHOWN])
        chosen = id_parse(self.value())
        if chosen is not None and all(b.pk != chosen for b in batches):
            batches += GenerationBatch.objects.filter(pk=chosen)
        return [(str(batch.pk), str(batch)) for batch in batches]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        batch_id = id_parse(self.value())
        return queryset.none() if batch_id is None else queryset.filter(batch_id=batch_id)


@admin.register(GeneratedAsset)
class GeneratedAssetAdmin(ReviewAdminMixin, admin.ModelAdmin):
    """The review queue: images in review by default, decisions on each page and in bulk."""

    # Narrow enough for a 1400 px window beside the filters: what the image is on two lines,
    # the offline badge under the status, long text cut with the whole of it on hover.
    list_display = (
        "thumbnail_tag",
        "what",
        "status_tag",
        "qa_tag",
        "reason",
        "cost_usd",
        "created",
    )
    list_display_links = ("thumbnail_tag", "what")
    list_filter = (
        ReviewStatusFilter,
        "qa_status",
        "preset",
        RecentBatchFilter,
        "offline",
        ReviewableByFilter,
    )
    actions = ["approve_selected", "reject_selected", "recheck_selected"]
    ordering = ("created_at", "pk")  # oldest first, as the queue is worked through
    list_select_related = ("product", "preset", "batch")
    search_fields = ("product__sku", "product__name")
    # The images, references, quality verdict and prompts are in the review panel above
    # (change_form.html), once; what is left is detail, folded away.
    fieldsets = [
        (
            "About this image",
            {
                "fields": (
                    "status",
                    "product",
                    "preset",
                    "batch",
                    "version",
                    "previous_version",
                    "aspect_ratio",
                    "size_tier",
                    "created_at",
                    "updated_at",
                ),
                "classes": ("collapse",),
            },
        ),
        (
            "How the style bestsellers were found",
            {
                "fields": ("reference_count", "references_table", "retrieval_note"),
                "classes": ("collapse",),
            },
        ),
        (
            "Channel rules",
            {
                "fields": ("staged", "overlay_text", "language", "regenerated_by_qa"),
                "classes": ("collapse",),
            },
        ),
        (
            "What the image model said",
            {"fields": ("model_text_text", "feedback"), "classes": ("collapse",)},
        ),
        (
            "Technical details: models, cost, timing and errors",
            {
                "fields": (
                    "analyst_model",
                    "image_model",
                    "cost_usd",
                    "usage_table",
                    "timings_table",
                    "attempts",
                    "claimed_by",
                    "failure_reason",
                    "last_error",
                ),
                "classes": ("collapse",),
            },
        ),
        ("Status changes", {"fields": ("events_table",), "classes": ("collapse",)}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def has_add_permission(self, request) -> bool:
        return False  # assets are made by batches

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # provenance: what was generated and how stays as it was

    def get_urls(self):
        return self.get_review_urls() + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        asset = self.get_object(request, object_id)
        if asset is not None and self.has_view_permission(request, asset):
            extra_context = {
                **(extra_context or {}),
                **self.review_context(request, asset),
                "asset_panels": self.asset_panels(request, asset),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def asset_panels(self, request, asset: GeneratedAsset) -> list[tuple[str, str, str]]:
        """Sections shown below the review panel, as (id, title, html); apps built on
        generation add theirs (performance: the image's figures on its channels)."""
        return []

    @admin.display(description="Image")
    def thumbnail_tag(self, asset: GeneratedAsset):
        return asset_thumbnail(asset, 56)

    @admin.display(description="Product and channel", ordering="product__sku")
    def what(self, asset: GeneratedAsset):
        variant = f".{asset.variant}" if asset.variant > 1 or asset.batch.variants > 1 else ""
        name = (
            format_html("<br>{}", short_text(asset.product.name, 30)) if asset.product.name else ""
        )
        return format_html(
            "<strong>{}</strong> · v{}{}{}<br><small>{} · batch {}</small>",
            asset.product.sku,
            asset.version,
            variant,
            name,
            asset.preset.name,
            asset.batch_id,
        )

    @admin.display(description="Status", ordering="status")
    def status_tag(self, asset: GeneratedAsset):
        if asset.offline:
            return format_html("{}<br>{}", asset.get_status_display(), offline_badge())
        return asset.get_status_display()

    @admin.display(description="Why")
    def reason(self, asset: GeneratedAsset):
        """Why it was rejected or failed, in short (the asset page has it whole)."""
        return short_text(asset.rejection_reason or asset.failure_reason, 48)

    @admin.display(description="Cost", ordering="cost")
    def cost_usd(self, asset: GeneratedAsset) -> str:
        return usd(asset.cost)

    @admin.display(description="Quality check", ordering="qa_status")
    def qa_tag(self, asset: GeneratedAsset):
        return short_text(asset.qa_summary, 32)

    @admin.display(description="Made", ordering="created_at")
    def created(self, asset: GeneratedAsset):
        return short_time(asset.created_at)

    @admin.display(description="Ranked by photo and description")
    def references_table(self, asset: GeneratedAsset):
        references = asset.references.select_related("product", "source_asset")
        return render_to_string(
            "admin/generation/generatedasset/references.html",
            {
                "references": references,
                "proven_min_impressions": f"{settings.PERFORMANCE_PROVEN_MIN_IMPRESSIONS:,}",
                "proven_references": settings.GENERATION_PROVEN_REFERENCES,
            },
        )

    # Model text is untrusted: format_html escapes it, <pre> keeps its lines.
    @admin.display(description="Text returned with the image")
    def model_text_text(self, asset: GeneratedAsset):
        return format_html(PRE, asset.model_text) if asset.model_text else "—"

    @admin.display(description="Token usage and cost per step")
    def usage_table(self, asset: GeneratedAsset):
        if not asset.usage:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            (
                (
                    step,
                    ", ".join(f"{k}: {v}" for k, v in values.items())
                    if isinstance(values, dict)
                    else values,
                )
                for step, values in asset.usage.items()
            ),
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description="Timings")
    def timings_table(self, asset: GeneratedAsset) -> str:
        return ", ".join(f"{step}: {seconds} s" for step, seconds in asset.timings.items()) or "—"

    @admin.display(description="Status changes")
    def events_table(self, asset: GeneratedAsset):
        events = asset.events.select_related("user")
        return render_to_string("admin/generation/generatedasset/events.html", {"events": events})


# --- products: what promo generation adds to the catalog's product admin -------------------


class PromoProductAdmin(ProductAdmin):
    """The product admin with the "Generate promo images" action and each product's published
    images per channel."""

    actions = [*ProductAdmin.actions, "generate_promos"]

    def product_panels(self, product: Product) -> list[tuple[str, str, str]]:
        return [
            *super().product_panels(product),
            ("product-published", "Published promo images", self.published_panel(product)),
        ]

    def has_request_promos_permission(self, request) -> bool:
        return can_request_promos(request.user)

    @admin.action(description="Generate promo images", permissions=["request_promos"])
    def generate_promos(self, request, queryset):
        # The confirmation page and everything after it live in admin_views.
        return promo_request_page(request, products=queryset, admin_site=self.admin_site)

    def published_panel(self, product: Product):
        assets = published_assets().filter(product=product)
        return render_to_string(
            "admin/generation/published_panel.html",
            {"assets": [(asset, published_url(asset)) for asset in assets]},
        )


admin.site.unregister(Product)
admin.site.register(Product, PromoProductAdmin)
