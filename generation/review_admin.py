"""The review queue's admin parts: its default filter, decisions and bulk actions.

GeneratedAssetAdmin (generation/admin.py) mixes these in. Permissions are checked here for the
pages and again by the review services for every decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.ids import id_parse
from generation.models import (
    REVIEW_TEXT_MAX_LENGTH,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    QAStatus,
)
from generation.providers import CHECK_LABELS
from generation.review import (
    PUBLISH,
    REVIEW,
    ReviewError,
    asset_approve,
    asset_publish,
    asset_recheck,
    asset_regenerate,
    asset_reject,
    asset_unpublish,
)
from generation.selectors import next_in_queue, review_gallery, reviewers
from generation.views import published_url

DECISIONS = {
    # decision: (service, permission, needs text, moves on to the next image in the queue)
    "approve": (lambda a, u, text: asset_approve(asset=a, user=u, note=text), REVIEW, False, True),
    "reject": (lambda a, u, text: asset_reject(asset=a, user=u, reason=text), REVIEW, True, True),
    "regenerate": (
        lambda a, u, text: asset_regenerate(asset=a, user=u, feedback=text),
        REVIEW,
        True,
        True,
    ),
    "recheck": (lambda a, u, text: asset_recheck(asset=a, user=u), REVIEW, False, False),
    "publish": (lambda a, u, text: asset_publish(asset=a, user=u), PUBLISH, False, False),
    "unpublish": (lambda a, u, text: asset_unpublish(asset=a, user=u), PUBLISH, False, False),
}


GALLERY_PAGE = 100  # previews per gallery page (renditions: about 20 KB each)


PAST = {
    "approve": "approved",
    "reject": "rejected",
    "regenerate": "regenerated",
    "recheck": "sent for a new quality check",
    "publish": "published",
    "unpublish": "unpublished",
}


@dataclass(frozen=True)
class GalleryChoice:
    """A select that an app built on generation adds to the gallery's filters (performance:
    sort and filter by the last 30 days' figures). Its first option, value "", leaves the
    gallery as it is; a value not among the options counts as that one."""

    name: str
    label: str
    options: list[tuple[str, str]]  # (value, label)

    def chosen(self, request) -> str:
        value = request.GET.get(self.name, "")
        return value if value in {option for option, _ in self.options} else ""


class ReviewStatusFilter(admin.SimpleListFilter):
    """Status, showing the review queue (in review) unless another status or "All" is chosen."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return AssetStatus.choices

    def value(self):
        return super().value() or AssetStatus.IN_REVIEW

    def queryset(self, request, queryset):
        return queryset if self.value() == "all" else queryset.filter(status=self.value())

    def choices(self, changelist):
        yield {
            "selected": self.value() == "all",
            "display": "All",
            "query_string": changelist.get_query_string({self.parameter_name: "all"}),
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "display": label,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
            }


class ReviewableByFilter(admin.SimpleListFilter):
    """Under the four-eyes rule (REVIEW_FOUR_EYES), the images one reviewer may decide: those
    of batches they did not request. Without the rule everybody may decide every image, and
    the filter is not offered."""

    title = "may be decided by"
    parameter_name = "reviewable_by"

    def lookups(self, request, model_admin):
        if not settings.REVIEW_FOUR_EYES:
            return []
        return [(str(user.pk), user.get_username()) for user in reviewers()]

    def queryset(self, request, queryset):
        if (user_id := id_parse(self.value())) is None:
            return queryset
        return queryset.exclude(batch__requested_by=user_id)


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=True,
        max_length=REVIEW_TEXT_MAX_LENGTH,
        help_text="Required: tell the merchandiser what is wrong.",
    )


class ReviewAdminMixin:
    """Decisions on one asset (its page) and on many (bulk actions)."""

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm(REVIEW)

    def has_publish_permission(self, request) -> bool:
        return request.user.has_perm(PUBLISH)

    def get_review_urls(self):
        return [
            path(
                "<int:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="generation_generatedasset_decide",
            ),
            path(
                "gallery/",
                self.admin_site.admin_view(self.gallery_view),
                name="generation_generatedasset_gallery",
            ),
        ]

    def gallery_view(self, request):
        """The review queue as a grid of previews, decided with the keyboard without leaving
        the page: A approve, R reject with a reason, F regenerate with feedback, arrows or J/K
        to move. Filtered by batch, preset, product (sku or name) and QA verdict."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        filters = {
            name: request.GET.get(name, "").strip()
            for name in ("status", "batch", "preset", "product", "qa")
        }
        choices = self.gallery_choices(request)
        chosen = {choice.name: choice.chosen(request) for choice in choices}
        assets = self.gallery_narrow(request, review_gallery(**filters), chosen)
        shown = list(assets[:GALLERY_PAGE])
        notes = self.gallery_notes(request, shown)
        return TemplateResponse(
            request,
            "admin/generation/generatedasset/gallery.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Review gallery",
                "assets": shown,
                "cards": [(asset, notes.get(asset.pk, "")) for asset in shown],
                "filters": filters,
                "choices": [(choice, chosen[choice.name]) for choice in choices],
                "more": max(assets.count() - len(shown), 0),
                "presets": ChannelPreset.objects.order_by("name"),
                "statuses": AssetStatus.choices,
                "qa_choices": QAStatus.choices,
                "can_review": self.has_review_permission(request),
            },
        )

    # Hooks for apps built on generation, as asset_panels() is for the asset page: the
    # gallery offers them without knowing what they read.

    def gallery_choices(self, request) -> list[GalleryChoice]:
        """Extra selects for the gallery's filters, for this user."""
        return []

    def gallery_narrow(self, request, assets, chosen: dict[str, str]):
        """The gallery's images sorted or narrowed by the extra selects' values (by name)."""
        return assets

    def gallery_notes(self, request, assets: list[GeneratedAsset]) -> dict[int, str]:
        """A line of HTML (escaped by its maker) on each shown image's card, by asset id."""
        return {}

    def review_context(self, request, asset: GeneratedAsset) -> dict:
        queue_next = next_in_queue(asset) if asset.status == AssetStatus.IN_REVIEW else None
        return {
            "decide_url": reverse("admin:generation_generatedasset_decide", args=[asset.pk]),
            "text_max_length": REVIEW_TEXT_MAX_LENGTH,
            "can_review": self.has_review_permission(request),
            "can_publish": self.has_publish_permission(request),
            "next_asset": queue_next,
            "public_url": published_url(asset, request) if asset.published_image else "",
            "references": asset.references.select_related("product", "source_asset"),
            "qa_rows": [
                {**check, "label": CHECK_LABELS.get(check["name"], "")} for check in asset.qa_checks
            ],
            "versions": GeneratedAsset.objects.filter(product=asset.product, preset=asset.preset)
            .select_related("batch")
            .order_by("version", "variant"),
        }

    def decide_view(self, request, object_id):
        """One decision. The gallery asks for JSON (Accept: application/json) and stays on its
        page; the asset page gets a redirect to the next image in the queue."""
        wants_json = "application/json" in request.headers.get("Accept", "")
        if request.method != "POST":
            return redirect("admin:generation_generatedasset_change", object_id)
        asset = get_object_or_404(GeneratedAsset, pk=object_id)
        decision = request.POST.get("decision", "")
        if decision not in DECISIONS:
            if wants_json:
                return JsonResponse({"ok": False, "error": "Unknown decision."}, status=400)
            messages.error(request, "Unknown decision.")
            return redirect("admin:generation_generatedasset_change", asset.pk)
        service, permission, needs_text, moves_on = DECISIONS[decision]
        if not request.user.has_perm(permission):
            if wants_json:
                return JsonResponse({"ok": False, "error": "You may not do this."}, status=403)
            raise PermissionDenied
        text = request.POST.get("text", "").strip()
        upcoming = next_in_queue(asset) if moves_on else None
        try:
            result = service(asset, request.user, text)
        except ReviewError as exc:
            if wants_json:
                return JsonResponse({"ok": False, "error": str(exc)}, status=409)
            messages.error(request, str(exc))
            return redirect("admin:generation_generatedasset_change", asset.pk)
        self.log_change(request, asset, f"{decision}: {text}" if text else decision)
        if wants_json:
            asset.refresh_from_db()
            set_aside = list(
                GeneratedAsset.objects.filter(
                    product=asset.product_id,
                    preset=asset.preset_id,
                    version=asset.version,
                    status=AssetStatus.SET_ASIDE,
                ).values_list("pk", flat=True)
            )
            return JsonResponse(
                {
                    "ok": True,
                    "status": asset.status,
                    "set_aside": set_aside,
                    "label": asset.get_status_display(),
                    "message": f"{asset}: {PAST[decision]}."
                    + (f" Queued {result}." if decision == "regenerate" else ""),
                }
            )
        messages.success(request, f"{asset}: {PAST[decision]}.")
        if decision == "regenerate":  # the new version's page, which opens it when it is ready
            messages.info(request, f"Queued {result}; this page shows it as soon as it is made.")
            return redirect("admin:generation_generatedasset_change", result.pk)
        if moves_on:
            if upcoming is not None:
                return redirect("admin:generation_generatedasset_change", upcoming.pk)
            messages.info(request, "The review queue is empty.")
            return redirect("admin:generation_generatedasset_changelist")
        return redirect("admin:generation_generatedasset_change", asset.pk)

    # --- bulk actions ----------------------------------------------------------------------

    @admin.action(description="Approve selected images", permissions=["review"])
    def approve_selected(self, request, queryset):
        self._decide_many(request, queryset, "approve", "")

    @admin.action(description="Check quality again for selected images", permissions=["review"])
    def recheck_selected(self, request, queryset):
        self._decide_many(request, queryset, "recheck", "")

    @admin.action(description="Reject selected images…", permissions=["review"])
    def reject_selected(self, request, queryset):
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._decide_many(request, queryset, "reject", form.cleaned_data["reason"])
            return None
        return TemplateResponse(
            request,
            "admin/generation/generatedasset/reject_selected.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "form": form,
                "assets": queryset,
                "title": "Reject images",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _decide_many(self, request, queryset, decision: str, text: str) -> None:
        service, _, _, _ = DECISIONS[decision]
        done, problems = 0, []
        for asset in queryset:
            try:
                service(asset, request.user, text)
            except ReviewError as exc:
                problems.append(str(exc))
                continue
            self.log_change(request, asset, f"{decision}: {text}" if text else decision)
            done += 1
        if done:
            messages.success(request, f"{done} image(s) {PAST[decision]}.")
        for problem in problems:
            messages.warning(request, problem)
