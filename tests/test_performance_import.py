"""The performance import: a channel's CSV matched to the image that was live that day, through
the service, `manage.py import_performance` and the admin's preview → confirm pages; and the
figures kept to staff (not in the feed, nor in the API without its scope: see
test_api_performance)."""

import csv
import io
import json
from datetime import datetime, time, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.staging import staging_get
from core.models import ApiScope
from demo.performance import sample_performance_csv
from generation.models import AssetEvent, AssetStatus, ChannelPreset
from generation.review import asset_approve, asset_publish, asset_unpublish
from generation.views import published_url
from performance.jobs import (
    NotWaiting,
    performance_import_cancel,
    performance_import_confirm,
    performance_import_create,
    performance_import_step,
    performance_imports_sweep,
)
from performance.models import ChannelDay, PerformanceImport
from performance.services import performance_check, performance_import_run
from tests.csp import assert_strict_csp
from tests.factories import csv_bytes
from tests.test_api_assets import get, token_for
from tests.test_review import make_asset, merchandiser, reviewer, user_in  # noqa: F401

pytestmark = pytest.mark.django_db

HERO = "Storefront hero"
HEADER = ["sku", "channel", "date", "impressions", "clicks", "orders"]
TODAY = timezone.localdate()


def day(ago: int):
    return TODAY - timedelta(days=ago)


def at(ago: int, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day(ago), time(hour)))


def backdate(asset, *, published_ago: int | None = None, ended_ago: int | None = None) -> None:
    """Move the asset's last publication (and its end) back in time in the status log."""
    events = AssetEvent.objects.filter(asset=asset)
    if published_ago is not None:
        start = events.filter(to_status=AssetStatus.PUBLISHED).latest("created_at", "pk")
        AssetEvent.objects.filter(pk=start.pk).update(created_at=at(published_ago))
    if ended_ago is not None:
        end = events.filter(from_status=AssetStatus.PUBLISHED).latest("created_at", "pk")
        AssetEvent.objects.filter(pk=end.pk).update(created_at=at(ended_ago))


def publish(user, *, sku="NEW1", preset=HERO, published_ago=30):
    asset = make_asset(sku=sku, preset_name=preset)
    asset = asset_publish(asset=asset_approve(asset=asset, user=user), user=user)
    backdate(asset, published_ago=published_ago)
    return asset


def row(sku="NEW1", ago=5, impressions=1000, clicks=30, orders=2, channel=HERO) -> list:
    return [sku, channel, day(ago).isoformat(), impressions, clicks, orders]


# --- matching ------------------------------------------------------------------------------


def test_a_file_with_matched_unmatched_and_duplicate_rows(reviewer):  # noqa: F811
    asset = publish(reviewer)
    other_preset = ChannelPreset.objects.exclude(name=HERO).first()
    data = csv_bytes(
        HEADER,
        [
            row(ago=5),  # line 2: matched
            row(ago=4, clicks=40),  # line 3: matched
            row(ago=5, clicks=31),  # line 4: repeats line 2 with other figures
            row(sku="NOSUCH"),  # line 5: no such product
            row(channel=other_preset.name),  # line 6: never published on that preset
            row(ago=40),  # line 7: before it was published
        ],
    )
    plan = performance_check(data=data)
    assert plan.ok, plan.errors
    assert plan.counts() == {
        "rows": 6,
        "matched": 2,
        "unmatched": 3,
        "duplicates": 1,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "errors": 0,
    }
    assert [(d.line, d.asset_id) for d in plan.days] == [(2, asset.pk), (3, asset.pk)]
    assert [(d.line, d.first_line, d.same_figures) for d in plan.duplicates] == [(4, 2, False)]
    reasons = {u.line: u.reason for u in plan.unmatched}
    assert reasons[5] == "no product has the SKU 'NOSUCH'"
    assert reasons[6] == f"NEW1 never had a published {other_preset.name} image"
    assert reasons[7].startswith(f"no {HERO} image of NEW1 was live on {day(40)}")
    assert not ChannelDay.objects.exists()  # a check writes nothing

    job = performance_import_run(data=data, csv_name="ads.csv")
    assert (job.state, job.created, job.unmatched, job.duplicates) == ("done", 2, 3, 1)
    stored = ChannelDay.objects.get(date=day(5))
    assert (stored.asset_id, stored.preset_id, stored.impressions, stored.clicks) == (
        asset.pk,
        asset.preset_id,
        1000,
        30,  # the first of the two rows for this day
    )
    assert (stored.orders, stored.add_to_carts, stored.revenue, stored.source) == (2, 0, None, job)


def test_reimporting_the_same_file_changes_nothing_and_a_changed_figure_is_an_update(
    reviewer,  # noqa: F811
    settings,
):
    settings.CATALOG_IMPORT_CHUNK_ROWS = 1  # a transaction per row: the counts add up over chunks
    publish(reviewer)
    data = csv_bytes(HEADER, [row(ago=5), row(ago=4)])
    performance_import_run(data=data, csv_name="ads.csv")
    before = list(ChannelDay.objects.values())

    again = performance_import_run(data=data, csv_name="ads.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert list(ChannelDay.objects.values()) == before

    changed = performance_import_run(
        data=csv_bytes(HEADER, [row(ago=5, clicks=45), row(ago=4)]), csv_name="ads-fixed.csv"
    )
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    assert changed.report["updates"] == [[2, "NEW1", HERO, day(5).isoformat(), "clicks 30 → 45"]]
    assert ChannelDay.objects.get(date=day(5)).clicks == 45
    assert ChannelDay.objects.get(date=day(5)).source == changed
    assert ChannelDay.objects.get(date=day(4)).source == PerformanceImport.objects.earliest("pk")


def test_an_image_unpublished_before_the_date_is_not_matched(reviewer):  # noqa: F811
    asset = publish(reviewer, published_ago=20)
    asset_unpublish(asset=asset, user=reviewer)
    backdate(asset, ended_ago=10)
    plan = performance_check(data=csv_bytes(HEADER, [row(ago=12), row(ago=5)]))
    assert [(d.line, d.asset_id) for d in plan.days] == [(2, asset.pk)]
    assert [u.line for u in plan.unmatched] == [3]
    assert f"was live on {day(5)}" in plan.unmatched[0].reason
    assert f"until {day(10)} 12:00" in plan.unmatched[0].reason


def test_each_day_goes_to_the_version_live_then_and_a_day_of_two_is_not_split(reviewer):  # noqa: F811
    first = publish(reviewer, published_ago=20)
    second = make_asset(sku="NEW1", preset_name=HERO)
    second = asset_publish(asset=asset_approve(asset=second, user=reviewer), user=reviewer)
    backdate(second, published_ago=10)
    backdate(first, ended_ago=10)  # replaced by the second, the same moment
    plan = performance_check(data=csv_bytes(HEADER, [row(ago=15), row(ago=5), row(ago=10)]))
    assert [(d.line, d.asset_id) for d in plan.days] == [(2, first.pk), (3, second.pk)]
    assert [u.line for u in plan.unmatched] == [4]
    assert "2 images of NEW1 were live" in plan.unmatched[0].reason


def test_a_row_may_name_its_image_by_the_published_url(reviewer):  # noqa: F811
    asset = publish(reviewer)
    url = "https://shop.example" + published_url(asset)
    header = ["image_url", "preset", "date", "impressions", "clicks"]
    plan = performance_check(data=csv_bytes(header, [[url, HERO, day(3).isoformat(), 50, 5]]))
    assert plan.ok and [d.asset_id for d in plan.days] == [asset.pk]

    other = ChannelPreset.objects.exclude(name=HERO).first().name
    plan = performance_check(data=csv_bytes(header, [[url, other, day(3).isoformat(), 50, 5]]))
    assert [str(e) for e in plan.errors] == [
        f"line 2, column 'image_url': is the image of preset {asset.preset_id}, not of {other!r}"
    ]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (
            {"clicks": 1001},
            "line 3, column 'clicks': 1001 clicks is more than the 1000 impressions",
        ),
        ({"impressions": "1,000"}, "line 3, column 'impressions': '1,000' is not a whole number"),
        ({"impressions": "١٠٠٠"}, "line 3, column 'impressions': '١٠٠٠' is not a whole number"),
        ({"clicks": "-3"}, "line 3, column 'clicks': '-3' is negative; counts start at 0"),
        ({"date": "05/01/2026"}, "line 3, column 'date': '05/01/2026' is not a date written as"),
        ({"date": "2026-02-30"}, "line 3, column 'date': '2026-02-30' is not a date of the"),
        ({"date": "2999-01-01"}, "line 3, column 'date': 2999-01-01 is in the future"),
        ({"orders": "2.5"}, "line 3, column 'orders': '2.5' is not a whole number"),
        ({"channel": " "}, "line 3, column 'channel': is empty; name the channel preset"),
        ({"channel": "Store\x00front"}, "line 3, column 'channel': holds a NUL character"),
    ],
)
def test_errors_name_the_line_and_the_column_and_nothing_is_written(reviewer, cells, expected):  # noqa: F811
    publish(reviewer)
    bad = dict(zip(HEADER, row(ago=4), strict=True)) | cells
    data = csv_bytes(HEADER, [row(ago=5), list(bad.values())])
    job = performance_import_run(data=data, csv_name="bad.csv")
    assert job.state == PerformanceImport.State.REFUSED and job.errors == 1
    assert job.report["errors"][0].startswith(expected), job.report["errors"]
    assert not ChannelDay.objects.exists()


def test_a_row_that_is_not_csv_or_has_too_many_cells_is_an_error_of_its_line(reviewer):  # noqa: F811
    publish(reviewer)
    good = ",".join(map(str, row(ago=5))).encode()
    data = b",".join(h.encode() for h in HEADER) + b"\n" + good + b",9\n" + good + b'\n"NEW1"x,\n'
    plan = performance_check(data=data)
    assert [str(e) for e in plan.errors] == [
        "line 2: has 7 cells; the header has 6",
        "line 4: this row cannot be read as CSV (',' expected after '\"')",
    ]
    assert plan.rows == 3


def test_a_header_without_the_needed_columns_is_refused():
    plan = performance_check(data=csv_bytes(["sku", "date", "clicks", "views"], []))
    assert [str(e) for e in plan.errors] == [
        "line 1, column 'views': unknown column (expected: date, impressions, clicks, sku, "
        "image_url, channel, preset, add_to_carts, orders, revenue)",
        "line 1, column 'impressions': missing column",
        "line 1, column 'channel': missing column: name the channel or preset",
    ]


# --- the command ---------------------------------------------------------------------------


def test_the_command_checks_with_dry_run_then_imports(reviewer, tmp_path, capsys):  # noqa: F811
    publish(reviewer)
    path = tmp_path / "ads.csv"
    path.write_bytes(csv_bytes(HEADER, [row(ago=5), row(sku="NOSUCH")]))
    call_command("import_performance", str(path), "--dry-run")
    out = capsys.readouterr().out
    assert "line 3: unmatched (NOSUCH" in out
    assert "2 rows, 1 matched (would write 1 new, 0 updated; 0 unchanged), 1 unmatched" in out
    assert not ChannelDay.objects.exists()
    call_command("import_performance", str(path))
    assert "wrote 1 new" in capsys.readouterr().out
    assert ChannelDay.objects.count() == 1

    path.write_bytes(csv_bytes(HEADER, [row(ago=5, clicks=2000)]))
    with pytest.raises(CommandError, match="1 error"):
        call_command("import_performance", str(path))
    assert "line 2, column 'clicks'" in capsys.readouterr().err


# --- the admin: preview, confirm, staff only ------------------------------------------------


def upload(client, data: bytes):
    return client.post(
        "/admin/performance/performanceimport/add/",
        {"csv_file": SimpleUploadedFile("ads.csv", data, content_type="text/csv")},
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_admin_previews_then_a_worker_writes_on_confirmation(
    client,
    reviewer,  # noqa: F811
    merchandiser,  # noqa: F811
    broker,
    worker,
    settings,
):
    settings.CATALOG_IMPORT_INLINE_ROWS = 2  # this file's three rows are checked by the worker
    publish(reviewer)
    client.force_login(merchandiser)
    response = upload(client, csv_bytes(HEADER, [row(ago=5), row(ago=5), row(sku="NOSUCH")]))
    job = PerformanceImport.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{job.pk}/change/")
    broker.join("imports")
    worker.join()
    page = client.get(response["Location"])
    assert_strict_csp(page)
    html = " ".join(page.content.decode().split())
    assert "3 rows: 1 matched (1 new, 0 updated, 0 unchanged), 1 unmatched, 1 duplicate" in html
    assert "no product has the SKU &#x27;NOSUCH&#x27;" in html and 'id="import-duplicates"' in html
    assert not ChannelDay.objects.exists()

    # Only the uploader confirms.
    client.force_login(user_in("Merchandiser", "someone-else"))
    assert client.post(response["Location"], {"action": "confirm"}).status_code == 403
    client.force_login(merchandiser)
    client.post(response["Location"], {"action": "confirm"})
    # A second confirmation (another tab) is told so and queues nothing.
    again = client.post(response["Location"], {"action": "confirm"}, follow=True)
    assert "is not waiting for a confirmation any more" in again.content.decode()
    broker.join("imports")
    worker.join()
    job.refresh_from_db()
    assert (job.state, job.created, job.unmatched) == ("done", 1, 1)
    assert ChannelDay.objects.count() == 1
    assert "Imported" in client.get(response["Location"]).content.decode()
    assert_strict_csp(client.get("/admin/performance/channelday/"))


def test_figures_are_for_staff_only(client, reviewer, merchandiser):  # noqa: F811
    asset = publish(reviewer)
    performance_import_run(
        data=csv_bytes(HEADER, [row(ago=5, impressions=987654, clicks=4321)]), csv_name="a.csv"
    )
    # Not staff: the admin's pages send to the login, whatever the permissions.
    outsider = User.objects.create_user("outsider", password="pw")
    outsider.user_permissions.set(merchandiser.user_permissions.all())
    client.force_login(outsider)
    for page in ("/admin/performance/channelday/", "/admin/performance/performanceimport/add/"):
        assert client.get(page).status_code == 302
    # Staff without the import permission read the figures, and cannot upload.
    client.force_login(reviewer)
    assert "987654" in client.get("/admin/performance/channelday/").content.decode()
    assert client.get("/admin/performance/performanceimport/add/").status_code == 403
    # The feed and the API carry no performance figures.
    for feed in ("/feeds/published.json", "/feeds/published.csv"):
        body = client.get(feed).content.decode()
        assert "NEW1" in body and "987654" not in body and "4321" not in body
        assert "impressions" not in body and "clicks" not in body
    secret = token_for(reviewer, ApiScope.ASSETS_READ)
    for path in (f"/assets/{asset.pk}", "/assets"):
        response = get(client, path, secret)
        assert response.status_code == 200 and "NEW1" in response.content.decode()
        assert "987654" not in response.content.decode()
        assert "impressions" not in response.content.decode()


def test_the_asset_page_shows_its_totals_to_those_who_may_read_them(client, reviewer):  # noqa: F811
    asset = publish(reviewer)
    performance_import_run(
        data=csv_bytes(HEADER, [row(ago=5, impressions=800, clicks=20), row(ago=4, clicks=30)]),
        csv_name="a.csv",
    )
    client.force_login(reviewer)
    page = client.get(f"/admin/generation/generatedasset/{asset.pk}/change/")
    assert_strict_csp(page)
    html = " ".join(page.content.decode().split())
    panel = html.split('id="asset-performance"')[1].split("</section>")[0]
    assert f"<caption>{HERO}: 2 days reported ({day(5)} – {day(4)})</caption>" in panel
    assert "1,800 impressions, 50 clicks, 0 add-to-carts, 4 orders" in panel
    assert "<strong>2.78 %</strong><br><small>50 clicks of 1,800 impressions</small>" in panel
    days = client.get(panel.split("every day</a>")[0].rsplit('href="', 1)[1].split('"')[0])
    assert days.status_code == 200 and len(days.context["cl"].result_list) == 2

    # Staff who may see the image but not the figures see no panel.
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_generatedasset", content_type__app_label="generation")
    )
    client.force_login(viewer)
    page = client.get(f"/admin/generation/generatedasset/{asset.pk}/change/")
    assert page.status_code == 200 and "asset-performance" not in page.content.decode()


def test_a_cancelled_upload_keeps_no_file_and_cannot_be_confirmed(reviewer, merchandiser):  # noqa: F811
    publish(reviewer)
    upload = SimpleUploadedFile("ads.csv", csv_bytes(HEADER, [row(ago=5)]))
    job = performance_import_create(user=merchandiser, csv_file=upload)
    assert (job.state, job.created) == ("checked", 1) and staging_get(job.token) is not None
    performance_import_cancel(job=job)
    assert job.state == "cancelled" and staging_get(job.token) is None
    with pytest.raises(NotWaiting):
        performance_import_confirm(job=job)
    assert PerformanceImport.objects.get().state == "cancelled"
    assert not ChannelDay.objects.exists()


def test_the_sweeper_sends_again_a_lost_import_and_drops_one_left_unconfirmed(
    reviewer,  # noqa: F811
    merchandiser,  # noqa: F811
    broker,
    django_capture_on_commit_callbacks,
):
    publish(reviewer)
    lost, left = (
        performance_import_create(
            user=merchandiser, csv_file=SimpleUploadedFile(name, csv_bytes(HEADER, [row(ago=5)]))
        )
        for name in ("lost.csv", "left.csv")
    )
    performance_import_confirm(job=lost)  # its message never reaches the broker
    broker.flush_all()
    assert performance_imports_sweep() == 0  # too early to call it lost
    PerformanceImport.objects.filter(pk=lost.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=11)
    )
    PerformanceImport.objects.filter(pk=left.pk).update(
        heartbeat_at=timezone.now() - timedelta(days=2)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert performance_imports_sweep() == 1
    [message] = broker.queues["imports"].queue
    assert json.loads(message)["args"] == [lost.pk]
    left.refresh_from_db()
    assert left.state == "cancelled" and staging_get(left.token) is None

    performance_import_step(job_id=lost.pk)  # what the worker does with the message
    lost.refresh_from_db()
    assert (lost.state, lost.created) == ("done", 1) and ChannelDay.objects.count() == 1
    performance_import_step(job_id=lost.pk)  # delivered twice: nothing more
    assert ChannelDay.objects.count() == 1


def test_the_asset_list_shows_sorts_and_filters_by_the_last_30_days(client, reviewer):  # noqa: F811
    low, high = publish(reviewer, sku="LOW1"), publish(reviewer, sku="HIGH1")
    quiet = publish(reviewer, sku="QUIET1")
    performance_import_run(
        data=csv_bytes(
            HEADER,
            [
                row(sku="LOW1", ago=3, impressions=1000, clicks=10),
                row(sku="HIGH1", ago=3, impressions=1000, clicks=80),
                row(sku="QUIET1", ago=45, impressions=1000, clicks=500),  # before the 30 days
            ],
        ),
        csv_name="a.csv",
    )
    client.force_login(reviewer)
    changelist = "/admin/generation/generatedasset/?status=all"
    page = client.get(changelist)
    html = " ".join(page.content.decode().split())
    assert "8.00% CTR<br><small>1,000 impressions</small>" in html
    column = len(page.context["cl"].list_display) - 1
    ordered = client.get(f"{changelist}&o=-{column}").context["cl"].result_list
    assert [a.pk for a in ordered if a.pk != quiet.pk] == [high.pk, low.pk]
    assert {a.pk for a in client.get(f"{changelist}&figures=yes").context["cl"].result_list} == {
        low.pk,
        high.pk,
    }
    assert [a.pk for a in client.get(f"{changelist}&figures=no").context["cl"].result_list] == [
        quiet.pk
    ]

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_generatedasset", content_type__app_label="generation")
    )
    client.force_login(viewer)
    page = client.get(changelist)
    assert page.status_code == 200 and "recent_figures" not in page.context["cl"].list_display
    assert "CTR" not in page.content.decode()


def test_the_dashboard_lists_the_best_and_worst_with_enough_impressions(
    client,
    reviewer,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setattr("performance.dashboard.SHOWN", 1)
    for sku in ("LOW1", "MID1", "HIGH1", "TINY1"):
        publish(reviewer, sku=sku)
    performance_import_run(
        data=csv_bytes(
            HEADER,
            [
                row(sku="LOW1", ago=3, impressions=1000, clicks=10),
                row(sku="MID1", ago=3, impressions=600, clicks=30),
                row(sku="MID1", ago=2, impressions=600, clicks=30),  # 1,200 over two days
                row(sku="HIGH1", ago=3, impressions=2000, clicks=160),
                row(sku="TINY1", ago=3, impressions=100, clicks=90),  # too few to rank
            ],
        ),
        csv_name="a.csv",
    )
    client.force_login(reviewer)
    page = client.get("/admin/")
    assert_strict_csp(page)
    html = " ".join(page.content.decode().split())
    best = html.split('id="desk-performers-best"')[1].split("</table>")[0]
    worst = html.split('id="desk-performers-worst"')[1].split("</table>")[0]
    assert "HIGH1" in best and "<td>8.00%</td><td>160</td><td>2000</td>" in best
    assert "LOW1" in worst and "<td>1.00%</td><td>10</td><td>1000</td>" in worst
    assert "<td>6.89 % – 9.27 %</td>" in best and "<td>0.54 % – 1.83 %</td>" in worst
    assert "MID1" not in best and "MID1" not in worst  # one of each shown
    assert "TINY1" not in best and "TINY1" not in worst

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_generatedasset", content_type__app_label="generation")
    )
    client.force_login(viewer)
    assert "desk-performers" not in client.get("/admin/").content.decode()


def test_the_demo_file_covers_each_day_an_image_was_live_and_imports_whole(
    reviewer,  # noqa: F811
    tmp_path,
):
    publish(reviewer, sku="NEW1", published_ago=40)
    gone = publish(reviewer, sku="NEW2", published_ago=40)
    asset_unpublish(asset=gone, user=reviewer)
    backdate(gone, ended_ago=10)  # live the whole of days 30 to 11 ago
    path = tmp_path / "sample.csv"
    call_command("make_sample_performance", str(path))
    data = path.read_bytes()
    assert data == sample_performance_csv()  # the same images and days, the same file
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 30 + 20
    assert {r["date"] for r in rows if r["sku"] == "NEW2"} == {
        day(ago).isoformat() for ago in range(11, 31)
    }
    job = performance_import_run(data=data, csv_name="sample.csv")
    assert (job.state, job.matched, job.unmatched, job.errors) == ("done", 50, 0, 0)


def test_a_file_over_the_limit_is_refused_while_it_arrives(client, merchandiser, settings):  # noqa: F811
    settings.CATALOG_IMPORT_MAX_CSV_BYTES = 100
    client.force_login(merchandiser)
    page = client.post(
        "/admin/performance/performanceimport/add/",
        {"csv_file": SimpleUploadedFile("big.csv", csv_bytes(HEADER, [row()] * 5))},
        follow=True,
    )
    assert "Nothing was stored. big.csv is larger than 100 bytes" in page.content.decode()
    assert not PerformanceImport.objects.exists()
