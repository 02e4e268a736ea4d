"""/api/v1/feed: the published feed, with the same rows as /feeds/published.json (whole, or
one channel preset's with `?preset=<name>`), for a token with `feed:read`."""

from __future__ import annotations

from ninja import Field, Router, Schema

from core.api.auth import require
from core.models import ApiScope
from generation.views import feed_rows

router = Router(tags=["feed"])


class FeedRow(Schema):
    sku: str
    preset: str
    aspect_ratio: str
    width: int
    height: int
    url: str
    published_at: str = Field(description="ISO 8601, as the JSON feed writes it.")
    offline: bool = Field(description="An offline preview, composed by code, not a model.")
    name: str


class Feed(Schema):
    items: list[FeedRow]


@router.get("", response=Feed, summary="The published feed")
def feed(request, preset: str | None = None):
    """Every published image (or one channel preset's), as the feed's JSON has them."""
    require(request, ApiScope.FEED_READ, "generation.view_generatedasset")
    return {"items": feed_rows(request)}
