"""What channels read: published images at stable public URLs, and the feed that lists them
(CSV or JSON, for a logged-in user or a bearer token: generation.feed_tokens)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from core.media import stored_file
from generation.feed_tokens import feed_token_check
from generation.models import AssetStatus, ChannelPreset, GeneratedAsset
from generation.selectors import published_assets

# New fields go at the end: channel scripts that read the CSV by position keep working.
FIELDS = [
    "sku",
    "preset",
    "aspect_ratio",
    "width",
    "height",
    "url",
    "published_at",
    "offline",
    "name",
]
PUBLISHED_PREFIX = "published/"
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The feed's query parameter that narrows it to one channel preset (by its name).
PRESET_PARAM = "preset"


def published_url(asset: GeneratedAsset, request: HttpRequest | None = None) -> str:
    """The image's stable public URL: on this site, or under PUBLISHED_BASE_URL (a CDN)."""
    name = asset.published_image.name
    if settings.PUBLISHED_BASE_URL:
        return f"{settings.PUBLISHED_BASE_URL}/{name}"
    path = reverse("published_image", args=[name.removeprefix(PUBLISHED_PREFIX)])
    return request.build_absolute_uri(path) if request is not None else path


def published_image(request: HttpRequest, name: str) -> HttpResponse:
    """A published image, to anyone; the same URL stops answering once it is unpublished."""
    stored = PUBLISHED_PREFIX + name
    if ".." in name.split("/") or not published_assets().filter(published_image=stored).exists():
        raise Http404
    response = stored_file(stored)
    # Republishing replaces the image behind the URL: caches keep it for minutes, not days.
    response["Cache-Control"] = "no-store" if response.status_code == 302 else "public, max-age=300"
    return response


def _token(request: HttpRequest) -> bytes | None:
    """The bearer token of the Authorization header (never the query string, which lands in
    access logs), as bytes; None when there is none or it is not plain ASCII."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.isascii() or not token.isprintable():
        return None
    return token.encode("ascii")


def _allowed(request: HttpRequest) -> bool:
    """A logged-in user who may view generated assets, or a feed token that is active (made
    in the admin, not revoked, not expired) or listed in FEED_TOKENS (deprecated)."""
    if request.user.is_authenticated and request.user.has_perm("generation.view_generatedasset"):
        return True
    token = _token(request)
    return token is not None and feed_token_check(token)


def feed_rows(request: HttpRequest) -> list[dict]:
    """The published feed's rows, whole or for the `preset` of the query (the CSV, the JSON
    and the API's /api/v1/feed serve the same)."""
    assets = published_assets()
    if channel := request.GET.get(PRESET_PARAM, "").strip():
        assets = assets.filter(preset__name=channel)
    return [
        {
            "sku": asset.product.sku,
            "preset": asset.preset.name,
            "aspect_ratio": asset.aspect_ratio,
            "width": asset.width,
            "height": asset.height,
            "url": published_url(asset, request),
            "published_at": asset.published_at.isoformat(),
            # An offline preview: composed by code, not by a generative model.
            "offline": asset.offline,
            "name": asset.product.name,  # the product's title; empty when it has none
        }
        for asset in assets
    ]


@dataclass(frozen=True)
class FeedLink:
    """One feed a channel can read: the whole feed (preset None) or one preset's."""

    preset: ChannelPreset | None
    published: int
    csv: str
    json: str


def feed_links(request: HttpRequest) -> list[FeedLink]:
    """The feed's absolute URLs: the whole feed first, then one per channel preset (the
    active ones and any other that still has published images), by name."""
    presets = list(
        ChannelPreset.objects.annotate(
            published=Count("assets", filter=Q(assets__status=AssetStatus.PUBLISHED))
        )
        .filter(Q(is_active=True) | Q(published__gt=0))
        .order_by("name")
    )
    links = [_feed_link(request, None, sum(preset.published for preset in presets))]
    return links + [_feed_link(request, preset, preset.published) for preset in presets]


def _feed_link(request: HttpRequest, preset: ChannelPreset | None, published: int) -> FeedLink:
    query = f"?{urlencode({PRESET_PARAM: preset.name})}" if preset is not None else ""
    urls = {
        fmt: request.build_absolute_uri(reverse(f"published_feed_{fmt}")) + query
        for fmt in ("csv", "json")
    }
    return FeedLink(preset=preset, published=published, **urls)


def spreadsheet_safe(value) -> object:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a quote."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def published_feed(request: HttpRequest, fmt: str) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse(
            "Log in, or send a feed token (Authorization: Bearer <token>).\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="published feed"'
        return response
    rows = feed_rows(request)
    if fmt == "json":
        return JsonResponse({"images": rows})
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="published.csv"'
    writer = csv.DictWriter(response, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)
    return response
