"""The REST API through its HTTP interface: tokens and scopes, the owner's permissions, rate
limit, body limit, problem details, and the products resource (list, get, put, bulk, sales)."""

import base64
import io
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from catalog.models import Product
from core.api_tokens import api_token_create, api_token_revoke
from core.models import ApiScope
from tests.conftest import free_port
from tests.factories import image_bytes, make_product

pytestmark = pytest.mark.django_db

API = "/api/v1"
PROBLEM = "application/problem+json"
READ, WRITE = ApiScope.PRODUCTS_READ, ApiScope.PRODUCTS_WRITE
PHOTO = base64.urlsafe_b64encode(image_bytes()).decode().rstrip("=")


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    caches["api"].clear()


def user_with(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def editor():
    return user_with("editor", "view_product", "add_product", "change_product")


@pytest.fixture
def viewer():
    return user_with("viewer", "view_product")


def token_for(user, *scopes, **fields) -> str:
    return api_token_create(name=f"{user} sync", owner=user, scopes=list(scopes), **fields)[1]


def call(client, method, path, secret=None, body=None, **extra):
    if secret is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    send = getattr(client, method)
    if body is None:
        return send(API + path, **extra)
    return send(API + path, body, content_type="application/json", **extra)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("/api/v1/problems/")
    assert problem["title"] and problem["detail"]
    return problem


# --- authentication ----------------------------------------------------------------------


def test_no_token_or_an_unknown_one_is_a_401_problem(client, editor):
    make_product("A1")
    assert_problem(call(client, "get", "/products"), 401)
    response = call(client, "get", "/products", "api_not-a-token")
    assert assert_problem(response, 401)["type"].endswith("/unauthenticated")
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_logged_in_session_opens_nothing(client, editor):
    """No session auth: a browser's cookies are not a credential here, so no CSRF exposure."""
    editor.is_staff = True
    editor.save()
    client.force_login(editor)
    assert_problem(call(client, "get", "/products"), 401)


def test_expired_revoked_and_deactivated_tokens_are_refused(client, editor):
    expired = token_for(editor, READ, expires_at=timezone.now() - timedelta(seconds=1))
    assert_problem(call(client, "get", "/products", expired), 401)
    token, secret = api_token_create(name="pim", owner=editor, scopes=[READ])
    assert call(client, "get", "/products", secret).status_code == 200
    api_token_revoke(token=token)
    assert_problem(call(client, "get", "/products", secret), 401)
    other = token_for(editor, READ)
    editor.is_active = False
    editor.save()
    assert_problem(call(client, "get", "/products", other), 401)


def test_the_token_is_stored_as_a_hash_and_its_use_recorded(client, editor):
    token, secret = api_token_create(name="pim", owner=editor, scopes=[READ])
    assert secret.startswith("api_") and secret not in str(list(token.__dict__.values()))
    assert token.prefix == secret[: len(token.prefix)]
    call(client, "get", "/products", secret)
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_create_api_token_prints_the_token_alone_on_the_last_line(editor, client):
    out = io.StringIO()
    call_command(
        "create_api_token",
        "PIM",
        "--user",
        "editor",
        "--scope",
        READ,
        "--expires-in-days",
        "30",
        stdout=out,
    )
    secret = out.getvalue().strip().splitlines()[-1]
    assert secret.startswith("api_") and " " not in secret
    assert call(client, "get", "/products", secret).status_code == 200


# --- scopes and the owner's permissions --------------------------------------------------

ENDPOINTS = [
    ("get", "/products", None, READ),
    ("get", "/products/A1", None, READ),
    ("put", "/products/A1", {"price": "10.00"}, WRITE),
    ("post", "/products/bulk", {"items": [{"sku": "A1", "price": "11.00"}]}, WRITE),
    ("post", "/products/sales", {"items": [{"sku": "A1", "sales_count": 5}]}, WRITE),
]


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS)
def test_each_endpoint_is_allowed_with_its_scope_and_refused_without(
    client, editor, method, path, body, scope
):
    make_product("A1")
    allowed = call(client, method, path, token_for(editor, scope), body)
    assert allowed.status_code == 200, allowed.content
    other = READ if scope == WRITE else WRITE
    refused = call(client, method, path, token_for(editor, other), body)
    assert assert_problem(refused, 403)["type"].endswith("/missing-scope")


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS)
def test_a_token_never_exceeds_its_owners_permissions(client, method, path, body, scope):
    make_product("A1")
    nobody = user_with("nobody")
    refused = call(client, method, path, token_for(nobody, READ, WRITE), body)
    problem = assert_problem(refused, 403)
    assert problem["type"].endswith("/missing-permission")
    assert "catalog." in problem["detail"]


def test_a_viewer_token_with_the_write_scope_cannot_create(client, viewer):
    secret = token_for(viewer, READ, WRITE)
    response = call(client, "put", "/products/NEW1", secret, {"category": "dress", "image": PHOTO})
    assert "catalog.add_product" in assert_problem(response, 403)["detail"]
    assert not Product.objects.filter(sku="NEW1").exists()


# --- limits and problem details -------------------------------------------------------------


def test_past_the_rate_limit_a_429_says_when_to_retry(client, editor, settings, limiter_redis):
    settings.CACHES = {
        **settings.CACHES,
        "api": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": limiter_redis,
        },
    }
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    secret = token_for(editor, READ)
    assert [call(client, "get", "/products", secret).status_code for _ in range(3)] == [200] * 3
    response = call(client, "get", "/products", secret)
    assert assert_problem(response, 429)["type"].endswith("/rate-limited")
    assert 1 <= int(response["Retry-After"]) <= 61
    # Another token has its own count.
    assert call(client, "get", "/products", token_for(editor, READ)).status_code == 200


def test_a_body_over_the_limit_is_refused_with_413(client, editor, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = {"items": [{"sku": f"S{i}", "category": "dress"} for i in range(100)]}
    response = call(client, "post", "/products/bulk", token_for(editor, WRITE), body)
    assert assert_problem(response, 413)["type"].endswith("/too-large")
    assert not Product.objects.exists()


def test_bad_input_is_a_4xx_problem_naming_the_field(client, editor):
    secret = token_for(editor, READ, WRITE)
    problem = assert_problem(call(client, "get", "/products?limit=0", secret), 422)
    assert problem["errors"][0]["field"] == "limit"
    problem = assert_problem(
        call(client, "post", "/products/bulk", secret, {"items": [{"sku": "A", "colour": "x"}]}),
        422,
    )
    assert problem["errors"] == [
        {"field": "items[0].colour", "reason": "Extra inputs are not permitted"}
    ]
    too_many = {"items": [{"sku": f"S{i}"} for i in range(1001)]}
    problem = assert_problem(call(client, "post", "/products/bulk", secret, too_many), 422)
    assert problem["errors"][0]["field"] == "items"
    broken = client.post(
        API + "/products/bulk",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert broken.status_code in (400, 422) and broken["Content-Type"] == PROBLEM
    problem = assert_problem(call(client, "get", "/products?cursor=nonsense", secret), 400)
    assert problem["errors"][0]["field"] == "cursor"


def test_unknown_products_and_addresses_are_404_problems(client, editor):
    secret = token_for(editor, READ)
    assert_problem(call(client, "get", "/products/NOPE", secret), 404)
    assert_problem(call(client, "get", "/nothing-here", secret), 404)


def test_the_schema_and_docs_are_for_staff(client, editor):
    assert client.get(API + "/docs").status_code == 302  # to the admin's login
    editor.is_staff = True
    editor.save()
    client.force_login(editor)
    schema = client.get(API + "/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/products/bulk" in schema["paths"]
    assert client.get(API + "/docs").status_code == 200


# --- products ----------------------------------------------------------------------------


def test_the_list_filters_as_the_admin_and_pages_with_a_cursor(client, editor):
    for i in range(7):
        make_product(f"D{i}", category="dress", season="summer" if i % 2 else "winter")
    make_product("J1", category="jacket")
    secret = token_for(editor, READ)
    seen, url = [], API + "/products?category=dress&limit=3"
    while url:
        page = client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").json()
        assert len(page["items"]) <= 3
        seen += [item["sku"] for item in page["items"]]
        url = page["next"]
    assert seen == [f"D{i}" for i in range(7)]
    summer = call(client, "get", "/products?category=dress&season=summer", secret).json()
    assert [item["sku"] for item in summer["items"]] == ["D1", "D3", "D5"]
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    since = call(client, "get", f"/products?updated_since={quote(later)}", secret).json()
    assert since["items"] == []
    earlier = quote((timezone.now() - timedelta(minutes=1)).isoformat())
    assert (
        len(call(client, "get", f"/products?updated_since={earlier}", secret).json()["items"]) == 8
    )


def test_get_returns_the_fields_and_the_photo_url(client, editor):
    make_product("A1", price="49.90", name="Linen dress")
    item = call(client, "get", "/products/A1", token_for(editor, READ)).json()
    assert item["sku"] == "A1" and item["name"] == "Linen dress" and item["price"] == "49.90"
    assert item["image_url"].startswith("http://testserver/media/products/")


def test_put_creates_then_updates_and_logs_under_the_token(client, editor):
    secret = token_for(editor, READ, WRITE)
    body = {"category": "dress", "price": 49.9, "lifecycle": "historical", "image": PHOTO}
    created = call(client, "put", "/products/P1", secret, body)
    assert created.status_code == 201, created.content
    assert created.json()["lifecycle"] == "historical" and created.json()["price"] == "49.90"
    updated = call(client, "put", "/products/P1", secret, {"sales_count": "12"})
    assert updated.status_code == 200
    product = Product.objects.get(sku="P1")
    # Left out, the lifecycle and photo stay as they are.
    assert (product.sales_count, product.lifecycle) == (12, "historical") and product.image
    entries = LogEntry.objects.filter(object_id=str(product.pk)).order_by("pk")
    assert [(e.action_flag, e.user, e.change_message) for e in entries] == [
        (ADDITION, editor, "via API token “editor sync”"),
        (CHANGE, editor, "via API token “editor sync”"),
    ]


def test_put_errors_use_the_csv_imports_words(client, editor):
    secret = token_for(editor, WRITE)
    response = call(client, "put", "/products/P1", secret, {"price": "abc", "image": PHOTO})
    problem = assert_problem(response, 422)
    assert {
        "field": "price",
        "reason": "'abc' is not a number; expected a price such as 49.90",
    } in (problem["errors"])
    assert {"field": "category", "reason": "is empty"} in problem["errors"]
    no_photo = assert_problem(call(client, "put", "/products/P2", secret, {"category": "x"}), 422)
    assert no_photo["errors"] == [
        {"field": "image", "reason": "is empty; a new product needs a photo"}
    ]
    bad = assert_problem(
        call(client, "put", "/products/P3", secret, {"category": "x", "image": "%%%"}), 422
    )
    assert bad["errors"][0]["field"] == "image"
    assert not Product.objects.exists()


def test_a_bulk_of_1000_writes_the_valid_items_and_names_the_bad_ones(client, editor):
    make_product("B0005", category="dress", price="10.00")  # updated by the bulk
    items = [
        {"sku": f"B{i:04}", "category": "dress", "price": "19.90", "image": PHOTO}
        for i in range(1000)
    ]
    items[5] = {"sku": "B0005", "price": "12.50"}
    items[10]["price"] = "-3"
    items[20]["category"] = ""
    items[30]["sku"] = "bad sku!"
    items[40]["sales_count"] = "many"
    items[50]["sku"] = "B0049"  # again
    response = call(client, "post", "/products/bulk", token_for(editor, WRITE), {"items": items})
    assert response.status_code == 200, response.content
    result = response.json()
    errors = {(e["index"], e["field"]): e["reason"] for e in result["errors"]}
    assert errors == {
        (10, "price"): "-3 is negative",
        (20, "category"): "is empty",
        (30, "sku"): "'bad sku!': Use letters, digits, dots, dashes and underscores, "
        "starting with a letter or digit.",
        (40, "sales_count"): "'many' is not a whole number",
        (50, "sku"): "sku 'B0049' already appears on item 49",
    }
    assert (result["created"], result["updated"]) == (994, 1)
    assert Product.objects.count() == 995
    assert Product.objects.get(sku="B0005").price == pytest.approx(12.5)
    assert not Product.objects.filter(sku__in=["B0010", "B0020", "B0040"]).exists()
    assert LogEntry.objects.filter(action_flag=ADDITION).count() == 994


def test_sales_updates_existing_products_and_names_unknown_ones(client, editor):
    make_product("S1")
    make_product("S2")
    body = {"items": [{"sku": "S1", "sales_count": 2500}, {"sku": "S9", "sales_count": 3}]}
    result = call(client, "post", "/products/sales", token_for(editor, WRITE), body).json()
    assert result["updated"] == 1
    assert result["errors"] == [
        {
            "index": 1,
            "field": "sku",
            "reason": "no product with sku 'S9'; import it with the catalog format first",
        }
    ]
    s1 = Product.objects.get(sku="S1")
    assert s1.sales_count == 2500 and s1.sales_updated_at is not None


def test_api_writes_queue_the_index_sync_after_commit(
    client, editor, broker, django_capture_on_commit_callbacks
):
    """As an import's: the written products are pending and their sync is sent on commit."""
    secret = token_for(editor, WRITE)
    with django_capture_on_commit_callbacks(execute=True):
        response = call(
            client, "put", "/products/P1", secret, {"category": "dress", "image": PHOTO}
        )
    assert response.status_code == 201
    assert Product.objects.get(sku="P1").index_state == "pending"
    messages = list(broker.queues["index"].queue)
    assert len(messages) == 1


def test_odd_input_is_never_a_500(client, editor):
    secret = token_for(editor, READ, WRITE)
    odd = [
        ("put", "/products/bad sku", {"category": "x", "image": PHOTO}),
        ("put", "/products/P1", {"category": ["a"], "image": PHOTO}),
        (
            "put",
            "/products/P1",
            {"category": "x", "image": base64.urlsafe_b64encode(b"no").decode()},
        ),
        ("post", "/products/bulk", {"items": "all"}),
        ("post", "/products/bulk", [1, 2]),
        ("post", "/products/sales", {"items": [{"sku": "P1", "sales_count": 10**12}]}),
        ("post", "/products/sales", {"items": [{"sku": None, "sales_count": True}]}),
    ]
    for method, path, body in odd:
        response = call(client, method, path, secret, body)
        assert 400 <= response.status_code < 500 or response.json()["errors"], (path, body)
        if response.status_code >= 400:
            assert response["Content-Type"] == PROBLEM and response.json()["detail"]
    assert not Product.objects.exists()


def test_a_photo_uploaded_first_is_named_by_its_id(client, editor, viewer):
    secret = token_for(editor, WRITE)

    def upload(data: bytes, who=secret):
        file = SimpleUploadedFile("dress.jpg", data, content_type="image/jpeg")
        return client.post(API + "/uploads", {"file": file}, HTTP_AUTHORIZATION=f"Bearer {who}")

    response = upload(image_bytes())
    assert response.status_code == 201, response.content
    upload_id = response.json()["id"]
    body = {"category": "dress", "image_upload": upload_id}
    assert call(client, "put", "/products/U1", secret, body).status_code == 201
    assert Product.objects.get(sku="U1").image
    problem = assert_problem(upload(b"not a photo"), 422)
    assert problem["errors"][0]["field"] == "file"
    # Another owner's upload is not found for this one.
    other = token_for(user_with("other", "add_product", "change_product"), WRITE)
    problem = assert_problem(call(client, "put", "/products/U2", other, body), 422)
    assert problem["errors"][0]["field"] == "image_upload"
    assert_problem(upload(image_bytes(), token_for(viewer, WRITE)), 403)


def test_a_token_call_needs_no_csrf_token(editor):
    """The bearer token is the credential; Django's CSRF check is for cookie sessions."""
    strict = Client(enforce_csrf_checks=True)
    body = {"items": [{"sku": "C1", "category": "dress", "image": PHOTO}]}
    response = call(strict, "post", "/products/bulk", token_for(editor, WRITE), body)
    assert response.status_code == 200 and response.json()["created"] == 1


def test_without_its_redis_the_rate_limit_lets_calls_through(client, editor, settings):
    settings.CACHES = {
        **settings.CACHES,
        "api": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        },
    }
    assert call(client, "get", "/products", token_for(editor, READ)).status_code == 200


def test_the_docs_page_loads_swagger_from_this_site(client, editor):
    editor.is_staff = True
    editor.save()
    client.force_login(editor)
    page = client.get(API + "/docs").content.decode()
    assert "swagger-ui" in page and "cdn." not in page
