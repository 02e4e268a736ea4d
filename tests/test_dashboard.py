"""The admin's home page: what needs attention, the month's spend, the provider's health and the
last publications; each figure equals the admin list its link opens, each panel shows only to
those allowed to see it, and the page's queries stay bounded."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogImport, Product
from core.ratelimit import slot
from core.spending import spend_book, spend_in_doubt, spend_reserve
from generation.models import AssetStatus, ChannelPreset, GeneratedAsset, GenerationBatch
from tests.factories import make_product

pytestmark = pytest.mark.django_db
HOME = reverse("admin:index")
PANELS = ("review", "failed", "batches", "imports", "money", "provider", "publications")


def user_in(group: str, username: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def make_asset(
    status: str,
    *,
    batch: GenerationBatch | None = None,
    sku: str = "NEW1",
    age: timedelta = timedelta(0),
    **fields,
) -> GeneratedAsset:
    product = Product.objects.filter(sku=sku).first() or make_product(sku)
    preset = ChannelPreset.objects.get(name="Storefront hero")
    batch = batch or GenerationBatch.objects.create(size_tier="1K")
    version = GeneratedAsset.objects.filter(product=product, preset=preset).count() + 1
    asset = GeneratedAsset.objects.create(
        batch=batch,
        product=product,
        preset=preset,
        version=version,
        status=status,
        aspect_ratio=preset.aspect_ratio,
        size_tier="1K",
        **fields,
    )
    then = timezone.now() - age
    GeneratedAsset.objects.filter(pk=asset.pk).update(created_at=then, updated_at=then)
    asset.refresh_from_db()
    return asset


def make_import(state: str, name: str, **fields) -> CatalogImport:
    return CatalogImport.objects.create(token=name, csv_name=name, state=state, **fields)


def listed(client, url: str) -> int:
    """How many rows the admin list at `url` holds."""
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count


@pytest.fixture
def desk():
    """A studio in the middle of a day: images in review and failed, a batch running, imports
    running and waiting, money spent, answers rejected, images published."""
    oldest = make_asset(AssetStatus.IN_REVIEW, sku="OLD1", age=timedelta(days=3))
    make_asset(AssetStatus.IN_REVIEW, sku="MID1", age=timedelta(hours=5))
    make_asset(AssetStatus.IN_REVIEW, sku="NEW1", age=timedelta(minutes=2))
    make_asset(
        AssetStatus.FAILED,
        sku="BAD1",
        age=timedelta(hours=2),
        failure_reason="The provider answered without an image three times.",
    )
    latest_failure = make_asset(
        AssetStatus.FAILED, sku="BAD2", failure_reason="Spending cap of $10 reached."
    )
    running = GenerationBatch.objects.create(size_tier="1K")
    make_asset(AssetStatus.QUEUED, batch=running, sku="RUN1")
    make_asset(AssetStatus.IN_REVIEW, batch=running, sku="RUN2", age=timedelta(hours=1))
    published = make_asset(
        AssetStatus.PUBLISHED,
        sku="PUB1",
        published_image="published/PUB1/preset-1.png",
        published_at=timezone.now(),
    )
    writing = make_import(
        CatalogImport.State.WRITING,
        "spring.csv",
        total_rows=200,
        rows_written=50,
        phase_started_at=timezone.now() - timedelta(minutes=1),
    )
    make_import(CatalogImport.State.CHECKED, "summer.csv", total_rows=10, rows_checked=10)
    make_import(CatalogImport.State.DONE, "winter.csv")
    spend_book(
        key="asset:1:image",
        kind="image",
        subject="asset:1",
        model="m",
        cost=Decimal("2.5"),
        price=Decimal("0.067"),
    )
    spend_book(
        key="asset:2:image",
        kind="image",
        subject="asset:2",
        model="m",
        cost=Decimal("0.5"),
        price=Decimal("0.067"),
        rejected_reason="The answer held no image.",
    )
    in_doubt = spend_reserve(amount=Decimal("1"), owner="worker-1", subject="asset:3")
    spend_in_doubt(in_doubt, "ReadTimeout: the provider did not answer")
    return {
        "oldest": oldest,
        "latest_failure": latest_failure,
        "running": running,
        "published": published,
        "writing": writing,
    }


def test_each_figure_equals_the_admin_list_its_link_opens(admin_client, desk, settings):
    settings.MONTHLY_SPENDING_CAP = "10"

    response = admin_client.get(HOME)

    assert response.status_code == 200
    panels = response.context["dashboard"]
    review, failed = panels["review"], panels["failed"]
    assert review["count"] == 4 == listed(admin_client, review["url"])
    assert [row["asset"].product.sku for row in review["oldest"]] == [
        "OLD1",
        "MID1",
        "RUN2",
        "NEW1",
    ]
    assert failed["count"] == 2 == listed(admin_client, failed["url"])
    assert failed["latest"][0]["asset"] == desk["latest_failure"]
    assert panels["batches"]["count"] == 1 == listed(admin_client, panels["batches"]["url"])
    assert panels["batches"]["batches"][0]["batch"] == desk["running"]
    finished = panels["batches"]["url"].replace("running=yes", "running=no")
    assert listed(admin_client, finished) == GenerationBatch.objects.count() - 1
    imports = panels["imports"]
    assert imports["running"] == 1 == listed(admin_client, imports["running_url"])
    assert imports["waiting"] == 1 == listed(admin_client, imports["waiting_url"])
    provider = panels["provider"]
    assert provider["answers"] == 2 == listed(admin_client, provider["answers_url"])
    assert provider["rejected"] == 1 == listed(admin_client, provider["rejected_url"])
    assert listed(admin_client, provider["rejected_url"].replace("rejected", "used", 1)) == 1
    assert provider["in_doubt"] == 1 == listed(admin_client, provider["in_doubt_url"])
    assert listed(admin_client, panels["money"]["calls_url"]) == 2
    publications = panels["publications"]
    assert publications["count"] == 1 == listed(admin_client, publications["url"])

    html = response.content.decode()
    oldest_url = reverse("admin:generation_generatedasset_change", args=[desk["oldest"].pk])
    assert f'<a href="{oldest_url}">OLD1 · Storefront hero</a>' in html
    assert "3\xa0days" in html  # how long the oldest image has waited
    assert "Spending cap of $10 reached." in html
    assert "The answer held no image." in html
    assert reverse("admin:catalog_catalogimport_change", args=[desk["writing"].pk]) in html
    assert "50 of 200 written" in html
    assert reverse("admin:generation_generationbatch_change", args=[desk["running"].pk]) in html
    assert "1 of 2" in html  # the running batch: one image finished of two
    assert "/published/PUB1/preset-1.png" in html
    assert reverse("admin:generation_generatedasset_gallery") in html
    assert 'id="desk-apps"' in html and "Generated assets" in html  # the app list stays


def test_money_shows_the_months_spend_against_the_cap_as_a_figure_and_a_bar(
    admin_client, desk, settings
):
    settings.MONTHLY_SPENDING_CAP = "10"

    money = admin_client.get(HOME).context["dashboard"]["money"]
    html = admin_client.get(HOME).content.decode()

    # $3 booked and $1 held by a call in doubt: 40 % of the cap.
    assert (money["spent"], money["reserved"], money["cap"]) == ("$3.000", "$1.000", "$10.000")
    assert money["percent"] == 40 and money["left"] == "$6.000" and money["level"] == "ok"
    assert '<span style="width: 40%"></span>' in html
    assert "spent of the $10.000 monthly cap" in html

    settings.MONTHLY_SPENDING_CAP = "4"
    money = admin_client.get(HOME).context["dashboard"]["money"]
    assert money["percent"] == 100 and money["level"] == "over"

    settings.MONTHLY_SPENDING_CAP = None
    html = admin_client.get(HOME).content.decode()
    assert "No monthly cap is set" in html and "desk-bar" not in html


def test_four_eyes_counts_per_reviewer_what_each_may_decide(client, settings):
    settings.REVIEW_FOUR_EYES = True
    rita, sam = user_in("Reviewer", "rita"), user_in("Reviewer", "sam")
    user_in("Merchandiser", "mia")  # not a reviewer: not listed
    ritas = GenerationBatch.objects.create(size_tier="1K", requested_by=rita)
    make_asset(AssetStatus.IN_REVIEW, batch=ritas, sku="R1")
    make_asset(AssetStatus.IN_REVIEW, sku="O1")
    make_asset(AssetStatus.IN_REVIEW, sku="O2")
    client.force_login(sam)

    reviewers = client.get(HOME).context["dashboard"]["review"]["reviewers"]

    assert [(row["name"], row["count"]) for row in reviewers] == [("rita", 2), ("sam", 3)]
    assert listed(client, reviewers[0]["url"]) == 2
    assert listed(client, reviewers[1]["url"]) == 3


def test_without_four_eyes_there_is_no_per_reviewer_table(admin_client, settings):
    settings.REVIEW_FOUR_EYES = False
    make_asset(AssetStatus.IN_REVIEW)

    response = admin_client.get(HOME)

    assert response.context["dashboard"]["review"]["reviewers"] is None
    assert 'id="desk-reviewers"' not in response.content.decode()


@pytest.mark.parametrize(
    ("group", "shown"),
    [
        ("Merchandiser", {"review", "failed", "batches", "imports", "publications"}),
        ("Reviewer", {"review", "failed", "batches", "publications"}),
        ("", set()),
    ],
)
def test_each_panel_shows_only_to_those_allowed_to_see_it(client, desk, group, shown):
    client.force_login(user_in(group, "someone"))

    response = client.get(HOME)

    assert response.status_code == 200
    panels = response.context["dashboard"]
    assert {name for name in PANELS if name in panels} == shown
    html = response.content.decode()
    for name in PANELS:
        assert (f'id="desk-{name}"' in html) == (name in shown), name
    assert ("Needs attention" in html) == bool(shown)
    if "money" not in shown:
        assert "$3.000" not in html and "spent of" not in html


def test_publications_link_the_product_only_for_those_who_may_view_products(client, desk):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_generatedasset", content_type__app_label="generation")
    )
    client.force_login(viewer)

    [row] = client.get(HOME).context["dashboard"]["publications"]["latest"]

    assert row["product_url"] == ""
    client.force_login(user_in("Reviewer", "rev"))  # the Reviewer role may view products
    [row] = client.get(HOME).context["dashboard"]["publications"]["latest"]
    assert row["product_url"] == reverse(
        "admin:catalog_product_change", args=[desk["published"].product_id]
    )


def test_the_provider_panel_shows_each_models_429s_from_the_rate_limiter(admin_client):
    with slot("google/image-model"):
        pass  # one call answered
    with slot("google/image-model") as taken:
        taken.limited(30)  # one answered 429, Retry-After 30 s

    response = admin_client.get(HOME)

    provider = response.context["dashboard"]["provider"]
    assert provider["limiter"] == "up"
    [pace] = provider["models"]
    assert (pace.model, pace.calls, pace.rate_limited) == ("google/image-model", 1, 1)
    html = response.content.decode()
    assert "<td>1 of 2</td>" in html and "paused until" in html


def test_the_provider_panel_says_plainly_when_the_rate_limiter_is_unreachable(
    admin_client, settings
):
    settings.OPENROUTER_LIMITER_URL = "redis://127.0.0.1:9/0"  # nothing listens on discard

    response = admin_client.get(HOME)

    assert response.context["dashboard"]["provider"]["limiter"] == "down"
    assert "The rate limiter cannot be reached" in response.content.decode()


def test_the_page_makes_a_bounded_number_of_queries_however_much_there_is(
    admin_client, django_assert_max_num_queries, settings
):
    settings.REVIEW_FOUR_EYES = True
    settings.MONTHLY_SPENDING_CAP = "100"
    for n in range(3):
        user_in("Reviewer", f"reviewer{n}")
    for n in range(8):
        batch = GenerationBatch.objects.create(size_tier="1K")
        make_asset(AssetStatus.QUEUED, batch=batch, sku=f"Q{n}")
        make_asset(AssetStatus.IN_REVIEW, batch=batch, sku=f"Q{n}")
        make_asset(AssetStatus.FAILED, batch=batch, sku=f"Q{n}", failure_reason="no image")
        make_asset(
            AssetStatus.PUBLISHED,
            batch=batch,
            sku=f"Q{n}",
            published_image=f"published/Q{n}/preset-1.png",
            published_at=timezone.now(),
        )
        make_import(CatalogImport.State.WRITING, f"file{n}.csv", total_rows=10)
        spend_book(
            key=f"k{n}",
            kind="image",
            subject=f"asset:{n}",
            model="m",
            cost=Decimal("0.1"),
            price=Decimal("0.1"),
            rejected_reason="no image",
        )
    admin_client.get(HOME)  # the session and the content types are cached after this

    with django_assert_max_num_queries(20):
        response = admin_client.get(HOME)

    assert response.context["dashboard"]["review"]["count"] == 8
    assert len(response.context["dashboard"]["batches"]["batches"]) == 5
