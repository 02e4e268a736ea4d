"""How the product changelist scales: the admin page beside the ORM query for the same page.

Fills a throw-away SQLite database with synthetic products (bulk_create), then requests the
product changelist through Django's test Client as a logged-in superuser, unfiltered and with
filters, at each size in --sizes. The floor is the plain ORM page query (the same filters, the
first 50 rows by sku). Everything is measured in one run; target: the changelist at the largest
size ≤ 1.5 × its time at the smallest.

    .venv/bin/python bench/changelist.py [--sizes 10000,50000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = Path(tempfile.mkdtemp(prefix="bench-changelist-"))
PAGES = {  # label: query string of the changelist
    "unfiltered": "",
    "season": "season=winter",
    "style + category": "style=style_23&category=category_3",
    "bestseller, lifecycle": "bestseller=yes&lifecycle=historical",
    "page 40": "p=40",
}
SEASONS = ["spring", "summer", "autumn", "winter", "all-season"]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": f"sqlite:///{FOLDER / 'db.sqlite3'}",
            "DJANGO_MEDIA_ROOT": str(FOLDER / "media"),
            "TASK_BROKER": "stub",
            "DJANGO_STATIC_MANIFEST": "0",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SESSION_COOKIE_SECURE": "0",
            "DJANGO_CSRF_COOKIE_SECURE": "0",
        }
    )
    import django

    django.setup()


def add_products(start: int, stop: int) -> None:
    from catalog.models import IndexState, Product

    batch = []
    for n in range(start, stop):
        sha = f"{n:064x}"
        batch.append(
            Product(
                sku=f"SKU{n:07}",
                lifecycle="historical" if n % 5 else "new",
                image=f"products/{sha[:2]}/{sha}.jpg",
                thumbnail=f"products/thumbs/{sha[:2]}/{sha}-160.jpg",
                image_sha256=sha,
                image_width=400,
                image_height=500,
                category=f"category_{n % 20}",
                color=f"colour_{n % 30}",
                style=f"style_{n % 40}",
                season=SEASONS[n % len(SEASONS)],
                description=f"Synthetic product {n}",
                price="49.90",
                sales_count=(n * 7919) % 5000,
                index_state=IndexState.SYNCED,
            )
        )
        if len(batch) == 5000:
            Product.objects.bulk_create(batch)
            batch = []
    Product.objects.bulk_create(batch)


def orm_page(query: str) -> None:
    """The floor: the same page's rows, filtered and ordered, with nothing around them."""
    from catalog.models import Product

    params = dict(part.split("=") for part in query.split("&") if part)
    page = int(params.pop("p", 1))
    products = Product.objects.all()
    if params.pop("bestseller", None) == "yes":
        products = products.bestsellers()
    products = products.filter(**params).order_by("sku")
    list(products[(page - 1) * 50 : page * 50])


def slowest(queries: list[str]) -> None:
    """Each query of a page again, timed (BENCH_SHOW_SQL=1: where the page's time goes)."""
    from django.db import connection

    for sql in queries:
        if sql.lstrip().upper().startswith("SELECT") and "%s" not in sql:
            with connection.cursor() as cursor:
                started = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                print(f"  {(time.perf_counter() - started) * 1000:6.1f} ms  {sql[:150]}")


def timed(function, repeat: int) -> float:
    """Median milliseconds of `repeat` calls, after one warm-up call."""
    function()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure(client, repeat: int) -> dict[str, tuple[float, float, int]]:
    from django.db import connection

    figures = {}
    for label, query in PAGES.items():
        url = f"/admin/catalog/product/?{query}"

        def page(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        queries = []
        with connection.execute_wrapper(
            lambda execute, sql, *rest, seen=queries: seen.append(sql) or execute(sql, *rest)
        ):
            page()
        if os.environ.get("BENCH_SHOW_SQL"):
            slowest(queries)
        figures[label] = (
            timed(page, repeat),
            timed(lambda q=query: orm_page(q), repeat),
            len(queries),
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))

    setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    client = Client()
    client.force_login(User.objects.create_superuser("bench", "bench@example.com", "bench"))
    results, have = {}, 0
    for size in sizes:
        add_products(have, size)
        have = size
        results[size] = measure(client, args.repeat)

    print(
        f"Product changelist (Django test Client, superuser, 50 rows a page), SQLite, "
        f"median of {args.repeat}"
    )
    print(
        f"{'page':<24}"
        + "".join(f"{f'{s:,} app':>12}{'ORM':>8}{'×ORM':>7}{'queries':>9}" for s in sizes)
    )
    for label in PAGES:
        line = f"{label:<24}"
        for size in sizes:
            app, orm, queries = results[size][label]
            line += f"{app:10.1f}ms{orm:6.1f}ms{app / orm:6.1f}×{queries:9}"
        print(line)
    small, large = sizes[0], sizes[-1]
    ratios = {label: results[large][label][0] / results[small][label][0] for label in PAGES}
    worst = max(ratios, key=ratios.get)
    print(
        f"changelist at {large:,} ÷ at {small:,}: "
        + ", ".join(f"{label} {r:.2f}×" for label, r in ratios.items())
    )
    verdict = "meets" if ratios[worst] <= 1.5 else "misses"
    print(f"worst {ratios[worst]:.2f}× ({worst}): {verdict} the target (≤ 1.5×)")


if __name__ == "__main__":
    main()
