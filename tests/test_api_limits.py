"""The API's limits on wrong tokens, per address (core/api/auth.py); the per-token limit is
tested with the products resource (test_api_products.py)."""

import pytest
from django.contrib.auth.models import Permission, User

from core.api_tokens import api_token_create
from core.models import ApiScope

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret():
    owner = User.objects.create_user("sync", password="pw")
    owner.user_permissions.set(Permission.objects.filter(codename="view_product"))
    return api_token_create(name="sync", owner=owner, scopes=[ApiScope.PRODUCTS_READ])[1]


def get(client, token, address="10.0.0.1"):
    return client.get("/api/v1/products", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address)


def test_an_address_sending_wrong_tokens_is_refused_for_the_minute(client, secret, settings):
    settings.API_FAILED_AUTH_PER_MINUTE = 3
    assert [get(client, f"guess-{n}").status_code for n in range(3)] == [401] * 3
    response = get(client, "guess-4")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response.json()["type"].endswith("/rate-limited")
    assert "wrong tokens" in response.json()["detail"]
    # Until the minute ends, even the right token from that address waits; others go on.
    assert get(client, secret).status_code == 429
    assert get(client, secret, address="10.0.0.2").status_code == 200


def test_right_tokens_do_not_count_against_the_address(client, secret, settings):
    settings.API_FAILED_AUTH_PER_MINUTE = 2
    assert [get(client, secret).status_code for _ in range(5)] == [200] * 5
    assert get(client, "guess").status_code == 401
