"""The "Generate promo images" page: selected products, the request form and its cost.

Like Django's delete_selected, the product list's action renders this page first and nothing
is queued until the merchandiser confirms. The page posts to its own admin URL (registered by
GenerationBatchAdmin), so the permission is checked on every request, whichever way it comes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from catalog.models import Product
from core.ids import ids_parse
from generation.forms import PromoRequestForm, providers_offline, usd
from generation.models import GenerationBatch, QAPolicy
from generation.services import batch_create
from generation.spending import Estimate

PERMISSION = "generation.request_promos"
SELECTED = "_selected_action"  # the same field name the admin's changelist uses
REQUEST_KEY = re.compile(r"[0-9a-f]{32}")


def can_request_promos(user) -> bool:
    return user.has_perm(PERMISSION)


def promo_request_page(
    request: HttpRequest, *, products: Iterable[Product], admin_site: AdminSite
) -> HttpResponse:
    """The first view of the page, from the product list's action: an empty form."""
    if not can_request_promos(request.user):
        raise PermissionDenied
    return _render(request, admin_site, [p.pk for p in products], PromoRequestForm())


def promo_request_view(request: HttpRequest, *, admin_site: AdminSite) -> HttpResponse:
    """The page's own URL: "Update estimate" re-renders it, "Generate" queues the batch."""
    if not can_request_promos(request.user):
        raise PermissionDenied
    if request.method != "POST":
        return _render(
            request, admin_site, ids_parse(request.GET.getlist(SELECTED)), PromoRequestForm()
        )
    ids = ids_parse(request.POST.getlist(SELECTED))
    form = PromoRequestForm(request.POST, products=_products(ids)[0])
    if "_confirm" in request.POST and form.is_valid():
        return _confirm(request, admin_site, ids, form)
    return _render(request, admin_site, ids, form)


def _request_key(request: HttpRequest) -> str:
    """The page's idempotency key: the one it was rendered with, or a new one."""
    key = request.POST.get("request_key", "")
    return key if REQUEST_KEY.fullmatch(key) else uuid.uuid4().hex


def _products(ids: list[int]) -> tuple[list[Product], list[Product]]:
    """The selected products that can be used, and those left out for lack of a photo."""
    selected = list(Product.objects.filter(pk__in=ids).order_by("sku"))
    return [p for p in selected if p.has_photo], [p for p in selected if not p.has_photo]


def _estimate(form: PromoRequestForm, products: list[Product]) -> tuple[Estimate | None, bool]:
    offline = providers_offline()
    if not form.is_bound or not form.is_valid() or not products:
        return None, offline
    return form.quote(products, offline=offline), offline


def _confirm(request, admin_site, ids, form) -> HttpResponse:
    products, _ = _products(ids)
    quote, offline = _estimate(form, products)
    # The merchandiser confirms the figures they saw; if the selection, the presets or the
    # prices changed since, show the new figures instead of queueing something else.
    shown = (request.POST.get("expected_images"), request.POST.get("expected_total"))
    if quote is None or shown != (str(quote.images), str(quote.total)):
        messages.warning(
            request,
            "The request changed since the estimate was shown. "
            "Check the new estimate and confirm again.",
        )
        return _render(request, admin_site, ids, form)
    key = _request_key(request)
    if (done := GenerationBatch.objects.filter(request_key=key).first()) is not None:
        messages.info(request, f"This request was already queued as batch {done.pk}.")
        return redirect("admin:generation_generationbatch_change", done.pk)
    batch = batch_create(
        user=request.user,
        request=form.batch_request(products),
        estimated_cost=quote.total,
        request_key=key,
    )
    admin_site.get_model_admin(GenerationBatch).log_addition(
        request, batch, f"Requested {quote.images} promo image(s) for {len(products)} product(s)."
    )
    cost = "offline previews, no cost" if offline else f"estimated {usd(quote.total)}"
    messages.success(request, f"Queued {quote.images} promo image(s) in batch {batch.pk} ({cost}).")
    return redirect("admin:generation_generationbatch_change", batch.pk)


def _render(request, admin_site, ids, form) -> HttpResponse:
    products, skipped = _products(ids)
    quote, offline = _estimate(form, products)
    context = {
        **admin_site.each_context(request),
        "opts": Product._meta,
        "title": "Generate promo images",
        "form": form,
        "products": products,
        "skipped": skipped,
        "historical": sum(p.lifecycle == Product.Lifecycle.HISTORICAL for p in products),
        "estimate": quote,
        "offline": offline,
        "per_image": usd(quote.per_image) if quote else "",
        "prices": {
            name: f"${getattr(quote, name)}"
            for name in ("image_price", "input_price", "analysis_price", "qa_price")
        }
        if quote
        else {},
        "staged_presets": [p.name for p in form.cleaned_data["presets"] if p.staged]
        if quote
        else [],
        "regenerating_presets": [
            p.name for p in form.cleaned_data["presets"] if p.qa_policy == QAPolicy.REGENERATE
        ]
        if quote
        else [],
        "total": usd(quote.total) if quote else "",
        "expected_total": str(quote.total) if quote else "",  # compared as text on confirm
        "action_url": reverse("admin:generation_generationbatch_request"),
        "selected_field": SELECTED,
        "request_key": _request_key(request),
    }
    return TemplateResponse(request, "admin/generation/promo_request.html", context)
