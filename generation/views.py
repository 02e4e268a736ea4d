"""The published-images feed that channel uploads read: CSV or JSON, login or token."""

from __future__ import annotations

import csv
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from generation.selectors import published_assets

FIELDS = ["sku", "preset", "aspect_ratio", "width", "height", "url", "published_at"]


def _token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.GET.get("token", "")


def _allowed(request: HttpRequest) -> bool:
    """A logged-in user who may view generated assets, or a configured feed token."""
    if request.user.is_authenticated and request.user.has_perm("generation.view_generatedasset"):
        return True
    token = _token(request)
    return bool(token) and any(hmac.compare_digest(token, known) for known in settings.FEED_TOKENS)


def _rows(request: HttpRequest) -> list[dict]:
    return [
        {
            "sku": asset.product.sku,
            "preset": asset.preset.name,
            "aspect_ratio": asset.aspect_ratio,
            "width": asset.width,
            "height": asset.height,
            "url": request.build_absolute_uri(asset.published_image.url),
            "published_at": asset.published_at.isoformat(),
        }
        for asset in published_assets()
    ]


def published_feed(request: HttpRequest, fmt: str) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse("Log in, or pass a feed token (Authorization: Bearer <token>).\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="published feed"'
        return response
    rows = _rows(request)
    if fmt == "json":
        return JsonResponse({"images": rows})
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="published.csv"'
    writer = csv.DictWriter(response, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return response
