"""/api/v1/assets through its HTTP interface: list with filters and cursor pages, get, the
image files over the token, and decisions (approve, reject, regenerate, publish, unpublish)
under the same permissions and four-eyes rule as the admin, logged under the token's name."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.utils import timezone

from core.api_tokens import api_token_create
from core.models import ApiScope
from generation.models import AssetStatus, GeneratedAsset, QAStatus
from tests.test_api_products import assert_problem, call, fresh_rate_counts  # noqa: F401
from tests.test_review import make_asset, merchandiser, png_bytes, reviewer, user_in  # noqa: F401

pytestmark = pytest.mark.django_db

READ, DECIDE = ApiScope.ASSETS_READ, ApiScope.ASSETS_DECIDE


def token_for(user, *scopes) -> str:
    return api_token_create(name=f"{user} shop", owner=user, scopes=list(scopes))[1]


def get(client, path, secret):
    return call(client, "get", path, secret)


def post(client, path, secret, body=None):
    return call(client, "post", path, secret, body if body is not None else {})


# --- reading -----------------------------------------------------------------------------


def test_an_asset_has_its_review_state_product_and_files(client, reviewer):  # noqa: F811
    asset = make_asset(sku="NEW1")
    asset.qa_status = QAStatus.FLAGGED
    asset.qa_checks = [{"name": "colour", "passed": False, "score": 0.4, "note": "too red"}]
    asset.save()
    response = get(client, f"/assets/{asset.pk}", token_for(reviewer, READ))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "in_review" and body["qa_status"] == "flagged"
    assert body["qa_checks"][0]["name"] == "colour" and body["qa_checks"][0]["passed"] is False
    assert body["sku"] == "NEW1" and body["preset"] == "Storefront hero"
    assert (body["version"], body["width"], body["height"], body["offline"]) == (1, 96, 128, False)
    assert body["published_url"] is None and body["preview_url"] is None
    assert body["image_url"] == f"http://testserver/api/v1/assets/{asset.pk}/image"


def test_the_image_is_sent_over_the_token_and_not_without_it(client, reviewer):  # noqa: F811
    asset = make_asset()
    secret = token_for(reviewer, READ)
    response = get(client, f"/assets/{asset.pk}/image", secret)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png_bytes()
    assert_problem(get(client, f"/assets/{asset.pk}/image", None), 401)
    assert_problem(get(client, f"/assets/{asset.pk}/preview", secret), 404)
    asset.preview.save("p.png", ContentFile(png_bytes((48, 64))))
    assert get(client, f"/assets/{asset.pk}/preview", secret).status_code == 200
    assert get(client, f"/assets/{asset.pk}", secret).json()["preview_url"].endswith("/preview")


def test_the_list_filters_and_pages_with_a_cursor(client, reviewer):  # noqa: F811
    first = make_asset(sku="A1")
    second = make_asset(sku="A2", status=AssetStatus.APPROVED)
    third = make_asset(sku="A3", preset_name="Storefront hero")
    GeneratedAsset.objects.filter(pk=first.pk).update(updated_at=timezone.now() - timedelta(days=2))
    secret = token_for(reviewer, READ)

    def ids(query):
        response = get(client, f"/assets{query}", secret)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["items"]]

    assert ids("") == [first.pk, second.pk, third.pk]
    assert ids("?status=approved") == [second.pk]
    assert ids("?sku=A3") == [third.pk]
    assert ids(f"?batch={first.batch_id}") == [first.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+", "%2B")
    assert ids(f"?updated_since={since}") == [second.pk, third.pk]
    assert ids("?preset=Nothing") == []
    page_one = get(client, "/assets?limit=2", secret).json()
    assert len(page_one["items"]) == 2 and page_one["next"]
    page_two = client.get(page_one["next"], HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert [row["id"] for row in page_two["items"]] == [third.pk] and page_two["next"] is None
    assert_problem(get(client, "/assets?status=bogus", secret), 422)
    assert_problem(get(client, "/assets?cursor=nonsense", secret), 400)


def test_reading_is_refused_without_the_scope_or_the_owners_permission(client, reviewer):  # noqa: F811
    asset = make_asset()
    wrong = token_for(reviewer, ApiScope.FEED_READ)
    for path in ("/assets", f"/assets/{asset.pk}", f"/assets/{asset.pk}/image"):
        assert assert_problem(get(client, path, wrong), 403)["type"].endswith("/missing-scope")
    nobody = token_for(User.objects.create_user("nobody"), READ)
    problem = assert_problem(get(client, f"/assets/{asset.pk}/image", nobody), 403)
    assert "view_generatedasset" in problem["detail"]
    assert_problem(get(client, "/assets/999999", token_for(reviewer, READ)), 404)


# --- decisions ---------------------------------------------------------------------------


def test_approve_then_publish_then_unpublish_by_api(client, reviewer, settings):  # noqa: F811
    asset = make_asset(sku="NEW1")
    secret = token_for(reviewer, DECIDE)
    response = post(client, f"/assets/{asset.pk}/approve", secret, {"note": "good light"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"

    response = post(client, f"/assets/{asset.pk}/publish", secret)
    assert response.status_code == 200, response.content
    url = response.json()["published_url"]
    assert url.startswith("http://testserver/published/NEW1/")
    assert client.get(url).status_code == 200  # public, no token

    response = post(client, f"/assets/{asset.pk}/unpublish", secret)
    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert response.json()["published_url"] is None

    messages = list(
        LogEntry.objects.filter(object_id=str(asset.pk))
        .order_by("pk")
        .values_list("change_message", flat=True)
    )
    assert messages == [
        "Approve: good light (via API token “rev shop”)",
        "Publish (via API token “rev shop”)",
        "Unpublish (via API token “rev shop”)",
    ]


def test_reject_needs_a_reason_and_regenerate_answers_the_new_version(
    client,
    reviewer,  # noqa: F811
    broker,
    django_capture_on_commit_callbacks,
):
    secret = token_for(reviewer, DECIDE)
    asset = make_asset(sku="NEW1")
    problem = assert_problem(post(client, f"/assets/{asset.pk}/reject", secret), 422)
    assert problem["errors"][0]["field"] == "reason"
    response = post(client, f"/assets/{asset.pk}/reject", secret, {"reason": "wrong sleeve"})
    assert response.status_code == 200 and response.json()["rejection_reason"] == "wrong sleeve"

    assert_problem(post(client, f"/assets/{asset.pk}/regenerate", secret, {"feedback": ""}), 422)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client, f"/assets/{asset.pk}/regenerate", secret, {"feedback": "plain sleeve"}
        )
    assert response.status_code == 200, response.content
    new = response.json()
    assert new["id"] != asset.pk and new["version"] == 2
    assert GeneratedAsset.objects.get(pk=new["id"]).previous_version_id == asset.pk


def test_a_decision_that_does_not_apply_is_a_409_with_the_services_words(client, reviewer):  # noqa: F811
    asset = make_asset(status=AssetStatus.FAILED)
    problem = assert_problem(
        post(client, f"/assets/{asset.pk}/approve", token_for(reviewer, DECIDE)), 409
    )
    assert "failed" in problem["detail"]


def test_four_eyes_rule_holds_through_the_api(client, settings):
    settings.REVIEW_FOUR_EYES = True
    both = user_in("Reviewer", "both")
    both.groups.add(Group.objects.get(name="Merchandiser"))
    own = make_asset(requested_by=both)
    problem = assert_problem(
        post(client, f"/assets/{own.pk}/approve", token_for(both, DECIDE)), 409
    )
    assert "Four-eyes" in problem["detail"]
    other = token_for(user_in("Reviewer", "other"), DECIDE)
    # No body at all, as `curl -X POST` sends it: the note is optional.
    response = client.generic(
        "POST", f"/api/v1/assets/{own.pk}/approve", HTTP_AUTHORIZATION=f"Bearer {other}"
    )
    assert response.status_code == 200, response.content


def test_decisions_are_refused_without_the_scope_or_past_the_owners_permission(
    client,
    reviewer,  # noqa: F811
    merchandiser,  # noqa: F811
):
    asset = make_asset()
    read_only = token_for(reviewer, READ)
    bodies = {"reject": {"reason": "dull"}, "regenerate": {"feedback": "brighter"}}
    for action in ("approve", "reject", "regenerate", "publish", "unpublish"):
        path = f"/assets/{asset.pk}/{action}"
        problem = assert_problem(post(client, path, read_only, bodies.get(action)), 403)
        assert problem["type"].endswith("/missing-scope")
    merch = token_for(merchandiser, DECIDE)
    for action in ("approve", "reject", "regenerate"):
        path = f"/assets/{asset.pk}/{action}"
        problem = assert_problem(post(client, path, merch, bodies.get(action)), 403)
        assert "review_asset" in problem["detail"]
    problem = assert_problem(post(client, f"/assets/{asset.pk}/publish", merch), 403)
    assert "publish_asset" in problem["detail"]
    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW and not LogEntry.objects.exists()
