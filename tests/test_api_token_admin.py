"""API tokens in the admin: made with the add form (shown once, on the answer page only),
owned by their maker unless a superuser picks another owner, revoked from their page."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from core.models import ApiScope, ApiToken

pytestmark = pytest.mark.django_db

ADD = reverse("admin:core_apitoken_add")
LIST = reverse("admin:core_apitoken_changelist")


def made_secret(response) -> str:
    return re.search(r'id="api-token-secret"[^>]*>(api_[\w-]+)<', response.content.decode())[1]


def test_a_superuser_makes_a_token_for_an_owner_and_sees_it_once(client):
    admin_user = User.objects.create_superuser("boss", password="pw")
    pim = User.objects.create_user("pim", password="pw")
    client.force_login(admin_user)
    response = client.post(
        ADD,
        {"name": "PIM sync", "owner": pim.pk, "scopes": [ApiScope.PRODUCTS_READ], "expires_at": ""},
    )
    assert response.status_code == 200, response.content
    secret = made_secret(response)
    token = ApiToken.objects.get()
    assert (token.owner, token.scopes) == (pim, [ApiScope.PRODUCTS_READ])
    # Shown on the answer only: not on the list, the token's page, or in a message.
    for page in (
        client.get(LIST),
        client.get(reverse("admin:core_apitoken_change", args=[token.pk])),
    ):
        assert page.status_code == 200 and secret not in page.content.decode()


def test_a_manager_makes_tokens_for_themselves_only(client):
    manager = User.objects.create_user("manager", password="pw", is_staff=True)
    manager.user_permissions.set(
        Permission.objects.filter(codename__in=["manage_apitokens", "view_apitoken"])
    )
    boss = User.objects.create_superuser("boss", password="pw")
    client.force_login(manager)
    form = client.get(ADD).content.decode()
    assert 'name="owner"' not in form
    client.post(ADD, {"name": "mine", "owner": boss.pk, "scopes": [ApiScope.PRODUCTS_WRITE]})
    assert ApiToken.objects.get().owner == manager


def test_revoking_keeps_the_row_and_logs_it(client):
    admin_user = User.objects.create_superuser("boss", password="pw")
    client.force_login(admin_user)
    secret = made_secret(
        client.post(ADD, {"name": "PIM", "owner": admin_user.pk, "scopes": [ApiScope.FEED_READ]})
    )
    token = ApiToken.objects.get()
    revoke = reverse("admin:core_apitoken_revoke", args=[token.pk])
    assert client.get(revoke).status_code == 200
    assert client.post(revoke).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert LogEntry.objects.filter(object_id=str(token.pk), change_message="Revoked.").exists()
    refused = client.get("/api/v1/products", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 401
