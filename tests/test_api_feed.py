"""/api/v1/feed: the published feed's rows for a token with feed:read, refused without it or
past the owner's permission to view generated assets."""

import pytest
from django.contrib.auth.models import User

from core.api_tokens import api_token_create
from core.models import ApiScope
from tests.test_api_products import PROBLEM
from tests.test_review import merchandiser, published, reviewer  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.django_db


def get(client, url, user, *scopes):
    secret = api_token_create(name="shop", owner=user, scopes=list(scopes))[1]
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_the_feed_has_the_json_feeds_rows(client, published, reviewer):  # noqa: F811
    response = get(client, "/api/v1/feed", reviewer, ApiScope.FEED_READ)
    assert response.status_code == 200, response.content
    client.force_login(reviewer)
    legacy = client.get("/feeds/published.json").json()["images"]
    rows = response.json()["items"]
    assert [row["sku"] for row in rows] == ["NEW1"]

    assert rows == legacy
    preset = rows[0]["preset"]
    assert get(client, f"/api/v1/feed?preset={preset}x", reviewer, ApiScope.FEED_READ).json() == {
        "items": []
    }


def test_the_feed_is_refused_without_its_scope_or_the_owners_permission(
    client,
    published,  # noqa: F811
    reviewer,  # noqa: F811
):
    response = get(client, "/api/v1/feed", reviewer, ApiScope.PRODUCTS_READ)
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM
    nobody = User.objects.create_user("nobody")
    response = get(client, "/api/v1/feed", nobody, ApiScope.FEED_READ)
    assert response.status_code == 403 and "view_generatedasset" in response.json()["detail"]
