"""*Performance* in the admin: upload a channel's CSV (its "add" page), the import's own page
(preview, confirm, cancel) and the imported days, read-only. The admin needs staff; the
figures are shown nowhere else."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.display import short_text, short_time
from core.view_only import ViewOnlyMixin
from generation.admin import GeneratedAssetAdmin
from generation.models import GeneratedAsset
from generation.review_admin import GalleryChoice
from performance.jobs import (
    NotWaiting,
    performance_import_cancel,
    performance_import_confirm,
    performance_import_create,
)
from performance.models import ChannelDay, PerformanceImport
from performance.panel import performance_panel
from performance.selectors import (
    RECENT_BANDS,
    RECENT_DAYS,
    in_recent_band,
    with_recent_figures,
)

IMPORT = "performance.import_performance"
VIEW_FIGURES = "performance.view_channelday"


class PerformanceUploadForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        help_text="A channel's export: sku or image_url, channel or preset, date, impressions, "
        "clicks; optional add_to_carts, orders, revenue.",
    )


def import_url(job: PerformanceImport) -> str:
    return reverse("admin:performance_performanceimport_change", args=[job.pk])


def may_decide(request, job: PerformanceImport) -> bool:
    """Only the person who uploaded the file (or a superuser) confirms or cancels it."""
    return request.user.is_superuser or job.requested_by_id == request.user.pk


@admin.register(PerformanceImport)
class PerformanceImportAdmin(admin.ModelAdmin):
    """Every performance import; "add" uploads a file, each opens its preview or outcome."""

    list_display = ("id", "started", "requested_by", "page_link", "state", "rows_shown")
    list_display_links = None
    list_filter = ("state",)
    search_fields = ("csv_name", "requested_by__username")
    list_select_related = ("requested_by",)

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm(IMPORT)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(IMPORT) or super().has_view_permission(request, obj)

    def add_view(self, request, form_url="", extra_context=None):
        """The upload: the file is kept and checked at once, then its page shows the preview."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PerformanceUploadForm(request.POST or None, request.FILES or None)
        # The upload handler stopped a file over CATALOG_IMPORT_MAX_CSV_BYTES as it arrived
        # (catalog.uploads; the form's field has the catalog import's name and limit).
        if refused := getattr(request, "upload_refused", None):
            messages.error(request, f"Nothing was stored. {refused}")
            form = PerformanceUploadForm()
        elif request.method == "POST" and form.is_valid():
            job = performance_import_create(
                user=request.user, csv_file=form.cleaned_data["csv_file"]
            )
            return redirect(import_url(job))
        return TemplateResponse(
            request,
            "admin/performance/performanceimport/upload.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "form": form,
                "title": "Import channel performance",
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The import's page: its counts and lists, and confirm or cancel while it waits."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            job = PerformanceImport.objects.select_related("requested_by").get(pk=int(object_id))
        except (ValueError, OverflowError, PerformanceImport.DoesNotExist):
            raise Http404("No such import.") from None
        if request.method == "POST":
            return self._decide(request, job)
        return TemplateResponse(
            request,
            "admin/performance/performanceimport/import.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "job": job,
                "report": job.report,
                "may_decide": may_decide(request, job),
                "title": f"Performance import {job.pk}: {job.csv_name}",
            },
        )

    def _decide(self, request, job: PerformanceImport):
        if not may_decide(request, job):
            raise PermissionDenied
        action = request.POST.get("action")
        try:
            if action == "confirm":
                performance_import_confirm(job=job)
                messages.success(request, f"Import {job.pk} is queued to be written.")
            elif action == "cancel":
                performance_import_cancel(job=job)
                messages.success(request, f"Import {job.pk} is cancelled.")
        except NotWaiting as exc:
            messages.warning(request, str(exc))
        return redirect(import_url(job))

    @admin.display(description="started", ordering="created_at")
    def started(self, job: PerformanceImport):
        return short_time(job.created_at)

    @admin.display(description="file", ordering="csv_name")
    def page_link(self, job: PerformanceImport):
        return format_html('<a href="{}">{}</a>', import_url(job), short_text(job.csv_name, 32))

    @admin.display(description="rows")
    def rows_shown(self, job: PerformanceImport):
        return format_html(
            "{} matched ({} new, {} updated, {} unchanged)<br>"
            "<small>{} unmatched, {} duplicates, {} errors</small>",
            job.matched,
            job.created,
            job.updated,
            job.unchanged,
            job.unmatched,
            job.duplicates,
            job.errors,
        )


@admin.register(ChannelDay)
class ChannelDayAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """The imported figures as the channels reported them: read-only, corrected by importing
    the day again."""

    # Narrow enough for a 1400 px window beside the filters: the preset by its name alone.
    list_display = (
        "date",
        "asset_link",
        "preset_name",
        "impressions",
        "clicks",
        "add_to_carts",
        "orders",
        "revenue",
        "source",
    )
    list_filter = ("preset", "date")
    search_fields = ("asset__product__sku",)
    list_select_related = ("asset__product", "preset", "source")
    date_hierarchy = "date"
    readonly_fields = [field.name for field in ChannelDay._meta.fields]

    @admin.display(description="preset", ordering="preset__name")
    def preset_name(self, day: ChannelDay) -> str:
        return day.preset.name

    @admin.display(description="image", ordering="asset__product__sku")
    def asset_link(self, day: ChannelDay):
        url = reverse("admin:generation_generatedasset_change", args=[day.asset_id])
        return format_html('<a href="{}">{} v{}</a>', url, day.asset.product.sku, day.asset.version)


class RecentFiguresFilter(admin.SimpleListFilter):
    """Images with or without channel figures in the last 30 days, or with enough of them."""

    title = f"channel figures (last {RECENT_DAYS} days)"
    parameter_name = "figures"

    def lookups(self, request, model_admin):
        return [(band, label) for band, (label, _) in RECENT_BANDS.items()]

    def queryset(self, request, queryset):
        return in_recent_band(queryset, band=self.value())


class PerformanceAssetAdmin(GeneratedAssetAdmin):
    """The generated asset admin with the images' figures on their channels, for those who
    may read them: a panel on each image's page, and on the list the last 30 days'
    impressions and CTR, to sort and filter by."""

    def may_read_figures(self, request) -> bool:
        return request.user.has_perm(VIEW_FIGURES)

    def get_queryset(self, request):
        assets = super().get_queryset(request)
        if not self.may_read_figures(request):
            return assets
        return with_recent_figures(assets, today=timezone.localdate())

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return (*shown, "recent_figures") if self.may_read_figures(request) else shown

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        return (*filters, RecentFiguresFilter) if self.may_read_figures(request) else filters

    @admin.display(description=f"last {RECENT_DAYS} days", ordering="recent_ctr")
    def recent_figures(self, asset: GeneratedAsset):
        impressions = getattr(asset, "recent_impressions", None)
        if impressions is None:
            return "—"
        ctr = f"{asset.recent_ctr:.2%} CTR" if asset.recent_ctr is not None else "no CTR"
        return format_html("{}<br><small>{} impressions</small>", ctr, f"{impressions:,}")

    # The gallery: the same figures, bands and order as the list, through generation's hooks.

    def gallery_choices(self, request) -> list[GalleryChoice]:
        choices = super().gallery_choices(request)
        if not self.may_read_figures(request):
            return choices
        bands = [(band, label) for band, (label, _) in RECENT_BANDS.items()]
        return [
            *choices,
            GalleryChoice(
                "figures", f"Channel figures ({RECENT_DAYS} days)", [("", "All"), *bands]
            ),
            GalleryChoice(
                "order",
                "Order",
                [
                    ("", "Oldest first"),
                    ("ctr", f"Highest CTR first ({RECENT_DAYS} days)"),
                    ("-ctr", f"Lowest CTR first ({RECENT_DAYS} days)"),
                ],
            ),
        ]

    def gallery_narrow(self, request, assets, chosen: dict[str, str]):
        assets = super().gallery_narrow(request, assets, chosen)
        if not self.may_read_figures(request):
            return assets
        assets = with_recent_figures(assets, today=timezone.localdate())
        assets = in_recent_band(assets, band=chosen.get("figures", ""))
        order = chosen.get("order", "")
        if order == "ctr":
            return assets.order_by(F("recent_ctr").desc(nulls_last=True), "created_at", "pk")
        if order == "-ctr":
            return assets.order_by(F("recent_ctr").asc(nulls_last=True), "created_at", "pk")
        return assets

    def gallery_notes(self, request, assets: list[GeneratedAsset]) -> dict[int, str]:
        notes = super().gallery_notes(request, assets)
        if not self.may_read_figures(request):
            return notes
        return {
            **notes,
            **{
                asset.pk: self.recent_figures(asset)
                for asset in assets
                if getattr(asset, "recent_impressions", None) is not None
            },
        }

    def asset_panels(self, request, asset: GeneratedAsset) -> list[tuple[str, str, str]]:
        panels = super().asset_panels(request, asset)
        if not self.may_read_figures(request):
            return panels
        html = render_to_string(
            "admin/performance/asset_panel.html",
            {
                **performance_panel(asset=asset),
                "days_url": reverse("admin:performance_channelday_changelist")
                + f"?asset__id__exact={asset.pk}",
            },
        )
        return [*panels, ("asset-performance", "Performance on its channels", html)]


admin.site.unregister(GeneratedAsset)
admin.site.register(GeneratedAsset, PerformanceAssetAdmin)
