"""Figures where people decide: the asset page's performance panel (CTR and conversion with
their intervals, against the preset's and the category's averages), its variant verdicts, and
the gallery sorted and filtered by the last 30 days, for those who may read figures only.

The images are published through the review services; their channel days are written as
the import writes them (tests/test_performance_import.py covers the import itself)."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from generation.models import ChannelPreset, GeneratedAsset
from performance.experiments import variant_experiments
from performance.models import ChannelDay
from performance.panel import performance_panel
from tests.csp import assert_strict_csp
from tests.factories import make_product
from tests.test_performance_import import HERO, publish
from tests.test_review import make_asset, reviewer  # noqa: F401

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def reported(asset, *, impressions, clicks, orders=0, ago=5) -> ChannelDay:
    """A day of figures for the image on its preset, as an import stores it."""
    return ChannelDay.objects.create(
        asset=asset,
        preset=asset.preset,
        date=TODAY - timedelta(days=ago),
        impressions=impressions,
        clicks=clicks,
        orders=orders,
    )


def page_of(client, asset) -> str:
    page = client.get(reverse("admin:generation_generatedasset_change", args=[asset.pk]))
    assert page.status_code == 200
    assert_strict_csp(page)
    return " ".join(page.content.decode().split())


def panel_of(client, asset) -> str:
    return page_of(client, asset).split('id="asset-performance"')[1].split("</section>")[0]


def viewer_without_figures() -> User:
    """Staff who may see the images but not their figures."""
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_generatedasset", content_type__app_label="generation")
    )
    return viewer


# --- against the averages ------------------------------------------------------------------


@pytest.fixture
def three_images(reviewer):  # noqa: F811
    """Two dresses and a pair of shoes on the hero preset, and a dress on another preset."""
    make_product("SHOE1", category="shoes")
    dress, other_dress, shoes = (publish(reviewer, sku=sku) for sku in ("NEW1", "NEW2", "SHOE1"))
    reported(dress, impressions=12_000, clicks=480, orders=20, ago=6)
    reported(dress, impressions=8_000, clicks=320, orders=20, ago=5)  # 800 of 20,000: 4 %
    reported(other_dress, impressions=10_000, clicks=200, orders=10)  # 2 %
    reported(shoes, impressions=10_000, clicks=100)  # 1 %
    elsewhere = ChannelPreset.objects.exclude(name=HERO).first()
    reported(publish(reviewer, sku="NEW3", preset=elsewhere.name), impressions=5000, clicks=2500)
    return dress, other_dress, shoes


def test_the_panel_sets_ctr_and_conversion_against_the_preset_and_category_averages(
    three_images,
):
    dress, _, shoes = three_images
    [hero] = performance_panel(asset=dress)["figures"]
    ctr, conversion = hero.measures

    assert (ctr.shown, ctr.interval, ctr.counts) == (
        "4.00 %",
        "3.74 % – 4.28 %",
        "800 clicks of 20,000 impressions",
    )
    # Pooled over the others on the preset (the image left out, the other preset ignored):
    # 300 clicks of 20,000 impressions; the dresses: 200 of 10,000.
    assert (ctr.preset.shown, ctr.preset.standing) == ("1.50 %", "above")
    assert ctr.preset.over == "2 other images on this preset (20,000 impressions)"
    assert (ctr.category.shown, ctr.category.standing) == ("2.00 %", "above")
    assert ctr.category.over == "1 other dress image on this preset (10,000 impressions)"
    assert not ctr.too_few

    # Conversion is orders per click: 40 of 800 clicks, too few clicks to compare.
    assert (conversion.shown, conversion.counts) == ("5.00 %", "40 orders of 800 clicks")
    assert conversion.too_few and conversion.preset.standing == "few"
    assert conversion.too_few_shown == "Too few clicks to mean much: 800 of the 1,000 needed"
    assert conversion.preset.shown == "3.33 %"  # 10 orders of 300 clicks

    [shoe_figures] = performance_panel(asset=shoes)["figures"]
    shoe_ctr = shoe_figures.measures[0]
    # 1 % against the others' 1,000 of 30,000 (3.33 %): its whole interval is below.
    assert (shoe_ctr.preset.shown, shoe_ctr.preset.standing) == ("3.33 %", "below")
    assert shoe_ctr.category.standing == "none"
    assert shoe_ctr.category.over == "no other shoes image on this preset has figures yet"


def test_the_asset_page_shows_the_rates_intervals_and_averages_in_plain_words(
    client,
    reviewer,  # noqa: F811
    three_images,
):
    dress, _, _ = three_images
    client.force_login(reviewer)
    panel = panel_of(client, dress)

    assert f"<caption>{HERO}: 2 days reported" in panel
    assert '<th scope="col">95 % Wilson interval</th>' in panel
    assert '<th scope="col">Category average (dress)</th>' in panel
    assert "20,000 impressions, 800 clicks, 0 add-to-carts, 40 orders" in panel
    ctr_row = panel.split('class="performance-ctr"')[1].split("</tr>")[0]
    assert '<th scope="row">CTR<br><small>clicks per impression</small></th>' in ctr_row
    assert "<strong>4.00 %</strong>" in ctr_row and "3.74 % – 4.28 %" in ctr_row
    assert '1.50 % <span class="badge badge-ok">credibly above</span>' in ctr_row
    conversion_row = panel.split('class="performance-conversion-rate"')[1].split("</tr>")[0]
    assert "orders per click" in conversion_row
    assert "Too few clicks to mean much: 800 of the 1,000 needed" in conversion_row
    assert "leaving this image out" in panel


def test_an_image_with_few_impressions_says_its_figures_mean_little(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    reported(asset, impressions=420, clicks=9)
    client.force_login(reviewer)
    ctr_row = panel_of(client, asset).split('class="performance-ctr"')[1].split("</tr>")[0]

    assert "Too few impressions to mean much: 420 of the 1,000 needed" in ctr_row
    assert "no average yet" not in ctr_row  # there is no average: nothing is said of one
    assert "no other image on this preset has figures yet" in ctr_row
    assert "credibly" not in ctr_row


def test_more_orders_than_clicks_is_said_not_computed(client, reviewer):  # noqa: F811
    """Channels count orders after a view too, so orders may outnumber clicks: orders per click
    is then no rate to put an interval on, for the image or for an average."""
    asset = publish(reviewer)
    other = publish(reviewer, sku="NEW9")
    reported(asset, impressions=2000, clicks=40, orders=53)
    reported(other, impressions=2000, clicks=30, orders=45)
    client.force_login(reviewer)

    panel = " ".join(unescape(panel_of(client, asset)).split())

    assert 'class="performance-conversion-rate"' not in panel
    assert (
        "Conversion rate: the channel counted more orders (53) than clicks (40), orders after "
        "a view among them, so orders per click is not a rate here." in panel
    )
    assert 'class="performance-ctr"' in panel


# --- variants as experiments ---------------------------------------------------------------


def versions_in_turn(reviewer, first: tuple[int, int], second: tuple[int, int]):  # noqa: F811
    """v1 published, then v2 replacing it; each with (impressions, clicks) reported."""
    older = publish(reviewer, sku="NEW5")
    newer = publish(reviewer, sku="NEW5")
    reported(older, impressions=first[0], clicks=first[1], ago=20)
    reported(newer, impressions=second[0], clicks=second[1], ago=5)
    return older, newer


def test_a_pair_with_enough_data_has_a_winner_and_says_how_sure(reviewer):  # noqa: F811
    older, newer = versions_in_turn(reviewer, (2000, 20), (2000, 60))  # 1 % against 3 %

    [experiment] = variant_experiments(asset=newer)
    assert experiment.other == older and experiment.this_won
    assert experiment.summary == "v2 won over v1: 99.9 % sure its CTR is higher."
    # Seen from the other side, the same verdict.
    [seen_back] = variant_experiments(asset=older)
    assert seen_back.other_won and seen_back.summary == experiment.summary


def test_a_pair_without_enough_data_has_no_winner_and_says_why(reviewer):  # noqa: F811
    older, newer = versions_in_turn(reviewer, (420, 10), (900, 30))

    [experiment] = variant_experiments(asset=newer)
    assert experiment.verdict.winner is None
    assert experiment.summary == (
        "No winner yet: too little data: 420 of the 1,000 impressions each side needs."
        " So far v2 leads (80 % sure)."
    )


def test_a_pair_with_enough_data_but_close_rates_has_no_winner(reviewer):  # noqa: F811
    _, newer = versions_in_turn(reviewer, (2000, 40), (2000, 46))

    [experiment] = variant_experiments(asset=newer)
    assert experiment.verdict.winner is None
    assert experiment.summary == (
        "No winner yet: no clear difference: 74 % sure, a winner needs 95 %. So far v2 leads."
    )


def test_only_images_with_figures_are_compared_and_variants_are_named_as_such(reviewer):  # noqa: F811
    first = publish(reviewer, sku="NEW6")
    assert variant_experiments(asset=first) == []  # no figures at all
    reported(first, impressions=1500, clicks=30)
    assert variant_experiments(asset=first) == []  # no other image with figures
    # A second candidate of the same version, live after the first.
    first.batch.variants = 2
    first.batch.save(update_fields=["variants"])
    second = GeneratedAsset.objects.create(
        batch=first.batch,
        product=first.product,
        preset=first.preset,
        version=1,
        variant=2,
        aspect_ratio=first.aspect_ratio,
        size_tier=first.size_tier,
    )
    untried = make_asset(sku="NEW6")  # a later version never shown: no figures
    reported(second, impressions=1500, clicks=75)

    [experiment] = variant_experiments(asset=first)
    assert experiment.other == second and untried != second
    assert experiment.summary == "v1.2 won over v1.1: 99.9 % sure its CTR is higher."


def test_the_asset_page_names_the_winner_and_links_the_other_variant(client, reviewer):  # noqa: F811
    older, newer = versions_in_turn(reviewer, (2000, 20), (2000, 60))
    client.force_login(reviewer)

    verdicts = panel_of(client, newer).split('id="performance-experiments"')[1]
    older_url = reverse("admin:generation_generatedasset_change", args=[older.pk])
    assert f'<a href="{older_url}">v1</a>' in verdicts
    assert '<span class="badge badge-ok">This image won</span>' in verdicts
    assert "v2 won over v1: 99.9 % sure its CTR is higher." in verdicts
    assert "3.00 % (2.34 % – 3.84 %) of 2,000 impressions" in verdicts

    older_page = panel_of(client, older).split('id="performance-experiments"')[1]
    assert '<span class="badge badge-bad">v2 won</span>' in older_page


def test_the_asset_page_declares_no_winner_on_too_little_data(client, reviewer):  # noqa: F811
    _, newer = versions_in_turn(reviewer, (420, 10), (900, 30))
    client.force_login(reviewer)

    verdicts = panel_of(client, newer).split('id="performance-experiments"')[1]
    assert "won" not in verdicts.split("</table>")[0]
    assert "too little data: 420 of the 1,000 impressions each side needs" in verdicts


# --- the gallery ---------------------------------------------------------------------------


@pytest.fixture
def gallery_images(reviewer):  # noqa: F811
    low, high, quiet = (publish(reviewer, sku=sku) for sku in ("LOW1", "HIGH1", "QUIET1"))
    reported(low, impressions=1000, clicks=10, ago=3)
    reported(high, impressions=500, clicks=40, ago=3)
    reported(quiet, impressions=1000, clicks=500, ago=45)  # before the 30 days
    return low, high, quiet


def gallery(client, **params) -> list[int]:
    page = client.get(reverse("admin:generation_generatedasset_gallery"), params)
    assert page.status_code == 200
    return [asset.pk for asset in page.context["assets"]]


def test_the_gallery_sorts_and_filters_by_the_last_30_days(client, reviewer, gallery_images):  # noqa: F811
    low, high, quiet = gallery_images
    client.force_login(reviewer)

    assert gallery(client, status="published") == [low.pk, high.pk, quiet.pk]  # oldest first
    assert gallery(client, status="published", order="ctr") == [high.pk, low.pk, quiet.pk]
    assert gallery(client, status="published", order="-ctr") == [low.pk, high.pk, quiet.pk]
    assert gallery(client, status="published", figures="yes") == [low.pk, high.pk]
    assert gallery(client, status="published", figures="enough") == [low.pk]
    assert gallery(client, status="published", figures="no") == [quiet.pk]
    assert gallery(client, status="published", order="nonsense") == [low.pk, high.pk, quiet.pk]

    page = client.get(reverse("admin:generation_generatedasset_gallery"), {"status": "published"})
    html = " ".join(page.content.decode().split())
    assert '<div class="card-note">8.00% CTR<br><small>500 impressions</small></div>' in html
    assert '<select name="order">' in html and '<select name="figures">' in html


def test_the_gallery_neither_shows_nor_sorts_by_figures_without_the_permission(
    client,
    gallery_images,
):
    low, high, quiet = gallery_images
    client.force_login(viewer_without_figures())

    assert gallery(client, status="published", order="ctr") == [low.pk, high.pk, quiet.pk]
    assert gallery(client, status="published", figures="no") == [low.pk, high.pk, quiet.pk]
    html = client.get(
        reverse("admin:generation_generatedasset_gallery"), {"status": "published"}
    ).content.decode()
    assert "CTR" not in html and 'name="figures"' not in html and "card-note" not in html


def test_the_asset_list_filters_images_with_enough_impressions(client, reviewer, gallery_images):  # noqa: F811
    low, _, _ = gallery_images
    client.force_login(reviewer)
    listed = client.get(
        reverse("admin:generation_generatedasset_changelist"),
        {"status": "all", "figures": "enough"},
    )
    assert [asset.pk for asset in listed.context["cl"].result_list] == [low.pk]
