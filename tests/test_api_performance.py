"""Channel performance over the API: an image's totals with their Wilson intervals and the
imported days, for a token with `performance:read` whose owner may read the figures in the
admin (staff with the view permissions); no figure anywhere without them."""

import base64
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from core.models import ApiScope, ApiToken
from performance.services import performance_import_run
from performance.stats import rate
from tests.factories import csv_bytes
from tests.test_api_assets import get, token_for
from tests.test_api_products import API, assert_problem, fresh_rate_counts  # noqa: F401
from tests.test_performance_import import HEADER, day, publish, row
from tests.test_review import merchandiser, reviewer  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.django_db

FIGURES = ApiScope.PERFORMANCE_READ
# Every scope but the one for figures: nothing it opens may show one.
OTHERS = [scope for scope in ApiScope.values if scope != FIGURES]
PERFORMANCE = ["/assets/{id}/performance", "/channel-days"]


def imported(*rows) -> None:
    job = performance_import_run(data=csv_bytes(HEADER, list(rows)), csv_name="ads.csv")
    assert (job.state, job.errors, job.unmatched) == ("done", 0, 0), job.report


def staff_with(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def test_an_images_performance_has_its_totals_and_rates_with_intervals(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    imported(
        row(ago=6, impressions=1200, clicks=30, orders=3),
        row(ago=4, impressions=800, clicks=20, orders=1),
    )
    response = get(client, f"/assets/{asset.pk}/performance", token_for(reviewer, FIGURES))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["asset"], body["sku"], body["confidence"]) == (asset.pk, "NEW1", 0.95)
    [figures] = body["presets"]
    assert figures["preset"] == "Storefront hero" and figures["days"] == 2
    assert (figures["first_day"], figures["last_day"]) == (str(day(6)), str(day(4)))
    assert (figures["impressions"], figures["clicks"], figures["orders"]) == (2000, 50, 4)
    assert figures["add_to_carts"] == 0 and figures["revenue"] is None
    # CTR 50 / 2,000 and conversion 4 / 50, each with its 95 % Wilson interval.
    ctr, conversion = figures["ctr"], figures["conversion"]
    assert ctr["value"] == 0.025 and conversion["value"] == 0.08
    expected_ctr, expected_conversion = rate(50, 2000), rate(4, 50)
    assert (ctr["low"], ctr["high"]) == (expected_ctr.low, expected_ctr.high)
    assert (conversion["low"], conversion["high"]) == (
        expected_conversion.low,
        expected_conversion.high,
    )
    assert 0.018 < ctr["low"] < 0.025 < ctr["high"] < 0.034


def test_an_image_without_figures_has_none_and_an_unknown_one_is_a_404(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    secret = token_for(reviewer, FIGURES)
    response = get(client, f"/assets/{asset.pk}/performance", secret)
    assert response.status_code == 200 and response.json()["presets"] == []
    assert_problem(get(client, f"/assets/{asset.pk + 1000}/performance", secret), 404)
    # Without the scope the answer is the same 403 whether the image exists or not.
    other = token_for(reviewer, *OTHERS)
    for asset_id in (asset.pk, asset.pk + 1000):
        assert_problem(get(client, f"/assets/{asset_id}/performance", other), 403)


def test_without_the_scope_no_payload_carries_a_figure(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    imported(row(ago=5, impressions=987654, clicks=4321))
    secret = token_for(reviewer, *OTHERS)
    for path in PERFORMANCE:
        problem = assert_problem(get(client, path.format(id=asset.pk), secret), 403)
        assert problem["type"].endswith("/missing-scope")
        assert "'performance:read'" in problem["detail"]
    # Every other route the token opens, and the assets' even with the scope: no figure.
    with_figures = token_for(reviewer, *ApiScope.values)
    for token in (secret, with_figures):
        for path in (f"/assets/{asset.pk}", "/assets", "/feed"):
            response = get(client, path, token)
            assert response.status_code == 200 and "NEW1" in response.content.decode()
            body = response.content.decode()
            assert "987654" not in body and "4321" not in body and "impressions" not in body


def test_a_token_never_shows_figures_its_owner_may_not_read(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    imported(row(ago=5, impressions=987654, clicks=4321))
    # Staff who may see images but not their figures.
    no_figures = staff_with("imagesonly", "view_generatedasset")
    # Every permission the figures need, but not staff: the admin would not show them either.
    outsider = User.objects.create_user("outsider", password="pw")
    outsider.user_permissions.set(
        Permission.objects.filter(codename__in=["view_channelday", "view_generatedasset"])
    )
    for owner, named in (
        (no_figures, "performance.view_channelday"),
        (User.objects.get(pk=outsider.pk), "is not staff"),
    ):
        secret = token_for(owner, FIGURES)
        for path in PERFORMANCE:
            response = get(client, path.format(id=asset.pk), secret)
            problem = assert_problem(response, 403)
            assert problem["type"].endswith("/missing-permission") and named in problem["detail"]
            assert "987654" not in response.content.decode()


def test_channel_days_are_listed_filtered_and_paged(client, reviewer, merchandiser):  # noqa: F811
    first = publish(reviewer, sku="NEW1")
    second = publish(reviewer, sku="NEW2")
    imported(
        *(row(sku="NEW1", ago=ago, impressions=1000 + ago, clicks=ago) for ago in (1, 2, 3, 4)),
        row(sku="NEW2", ago=2, impressions=500, clicks=5),
    )
    secret = token_for(merchandiser, FIGURES)

    def listed(query: str) -> list[tuple[int, str, int]]:
        response = get(client, f"/channel-days?{query}", secret)
        assert response.status_code == 200, response.content
        return [(item["asset"], item["date"], item["clicks"]) for item in response.json()["items"]]

    assert sorted(listed("")) == sorted(
        [(first.pk, str(day(ago)), ago) for ago in (1, 2, 3, 4)] + [(second.pk, str(day(2)), 5)]
    )
    assert listed(f"asset={second.pk}") == listed("sku=NEW2") == [(second.pk, str(day(2)), 5)]
    assert listed("preset=Marketplace main image") == []
    since, until = day(3).isoformat(), day(2).isoformat()
    assert sorted(listed(f"sku=NEW1&since={since}&until={until}")) == [
        (first.pk, str(day(3)), 3),
        (first.pk, str(day(2)), 2),
    ]
    item = get(client, f"/channel-days?asset={second.pk}", secret).json()["items"][0]
    assert (item["sku"], item["preset"], item["impressions"]) == ("NEW2", "Storefront hero", 500)
    # Pages of two, in id order, through `next` until it is null.
    seen, url = [], f"{API}/channel-days?sku=NEW1&limit=2"
    while url:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").json()
        seen += [item["id"] for item in body["items"]]
        url = body["next"]
    assert len(seen) == 4 and seen == sorted(seen)
    assert_problem(get(client, "/channel-days?since=yesterday", secret), 422)
    assert_problem(get(client, "/channel-days?cursor=nonsense", secret), 400)


def test_more_orders_than_clicks_give_no_conversion_rate(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    imported(row(ago=5, impressions=1000, clicks=3, orders=5))
    response = get(client, f"/assets/{asset.pk}/performance", token_for(reviewer, FIGURES))
    [figures] = response.json()["presets"]
    assert figures["orders"] == 5 and figures["ctr"]["value"] == 0.003
    assert figures["conversion"] == {"value": None, "low": None, "high": None}


def test_tokens_are_made_with_the_scope_and_the_schema_lists_it(client, reviewer, capsys):  # noqa: F811
    call_command("create_api_token", "Dashboard", "--user", "rev", "--scope", "performance:read")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiToken.objects.get(name="Dashboard").scopes == ["performance:read"]
    assert get(client, "/channel-days", secret).status_code == 200
    # The admin's form offers it.
    boss = User.objects.create_superuser("boss", password="pw")
    client.force_login(boss)
    form = client.get("/admin/core/apitoken/add/").content.decode()
    assert 'value="performance:read"' in form
    schema = client.get(f"{API}/openapi.json").json()
    assert "`performance:read`" in schema["info"]["description"]
    assert {"/api/v1/assets/{asset_id}/performance", "/api/v1/channel-days"} <= set(schema["paths"])


@pytest.mark.parametrize(
    ("path", "after"),
    [
        ("/channel-days", "abc"),
        ("/channel-days", 2**64),
        ("/channel-days", -5),
        ("/assets", "abc"),
        ("/assets", 2**64),
        ("/products", "NEW\x00"),
    ],
)
def test_a_crafted_cursor_is_a_400_not_a_database_error(client, merchandiser, path, after):  # noqa: F811
    # Cursors are plain base64: a word or a number past a bigint for an id, or a NUL in a SKU
    # (which PostgreSQL refuses), must not reach the database.
    cursor = base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()
    secret = token_for(merchandiser, FIGURES, ApiScope.ASSETS_READ, ApiScope.PRODUCTS_READ)
    problem = assert_problem(get(client, f"{path}?cursor={cursor}", secret), 400)
    assert problem["type"].endswith("/invalid-cursor")
