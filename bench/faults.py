"""The paid pipeline under faults, on the real parts, with figures.

Starts a redis-server (append-only, as bin/run does), a `milvus-lite server`, the
OpenRouter-protocol server of the tests (in this process, with fault injection, latency and
its own bill), the Dramatiq workers (`manage.py rundramatiq`) and the scheduler
(`manage.py scheduler`), all on free ports in a throw-away folder, and runs:

  a  100 assets while 20 % of the provider's chat answers are faults (429, 500, no answer,
     no image, malformed image, blank image)
  b  every worker process killed with SIGKILL in the middle of a batch of 40 (1 s provider
     latency), then the workers started again
  c  Redis stopped while a batch of 4 is requested and 5 products are edited, then started
  d  Milvus stopped while 10 descriptions are edited, then started
  e  every worker process stopped with SIGTERM in the middle of a batch of 40 (graceful: the
     calls in flight finish and are booked), then started again

The provider bills as OpenRouter does: an answer is billed when it is produced, whether or not
anybody reads it (tests/openrouter_server.py). A worker killed while its call is in flight, or
a call that outlives OPENROUTER_TIMEOUT (a "hang"), is billed without an answer reaching us, and
the retry pays again: OpenRouter keeps no copy of an answer nobody read.

For each: attempted, in review, failed (each with its reason), stuck, "paid twice" (calls
billed more than once for the same step of the same product: kind and sku), "lost in flight"
beside it (calls billed whose answer no worker read: in flight at the kill, or hung past the
timeout; paid twice can be at most this), what the ledger booked against what the provider
billed (the ledger after the spending reconcile, core/reconcile.py, which books what nobody
booked as unattributed spend; unattributed is shown apart), index drift after the repair, and
how long after the fault ended the last asset (or product) reached its end state.

    .venv/bin/python bench/faults.py [--scenarios abcde] [--assets 100] [--kill-batch 40]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from stack import Process, free_port, procfile_commands

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_SECONDS = 120  # every asset at an end state within 2 minutes after the fault ends


def environment(folder: Path, ports: dict[str, int]) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-faults",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DJANGO_MEDIA_ROOT": str(folder / "media"),
        "MILVUS_URI": f"http://127.0.0.1:{ports['milvus']}",
        "MILVUS_COLLECTION_PREFIX": "bench",
        "MILVUS_TIMEOUT": "5",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "TASK_BROKER": "redis",
        "OPENROUTER_API_KEY": "test-openrouter-key",
        "OPENROUTER_BASE_URL": f"http://127.0.0.1:{ports['openrouter']}/api/v1",
        "EMBEDDER_BACKEND": "catalog.embedders.offline.OfflineEmbedder",
        "OPENROUTER_TIMEOUT": "5",  # a hung answer fails after 5 s and is retried later
        # Calls end on our side within 20 s; the provider has produced every answer within
        # 30 s of the request (the hang is 10 s): then the reconcile may settle what was lost.
        "SPENDING_RESERVATION_SECONDS": "20",
        "SPENDING_SETTLE_AFTER_SECONDS": "30",
        "SPENDING_RECONCILE_INTERVAL_SECONDS": "30",
        "INDEX_RECONCILE_INTERVAL_SECONDS": "60",
        "LOG_LEVEL": "WARNING",
        "MONTHLY_SPENDING_CAP": "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="abcde")
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--kill-batch", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, database)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="faults-"))
    ports = {name: free_port() for name in ("redis", "milvus", "openrouter")}
    os.environ.update(environment(folder, ports))

    import logging

    import django

    django.setup()
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    # pymilvus logs an error for a collection released by a Milvus restart; the app loads it.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    from tests.openrouter_server import OpenRouterServer

    python = [sys.executable, "manage.py"]
    commands = procfile_commands(folder, ports)
    stack = {
        "redis": Process("redis", commands["redis"], folder, ports["redis"]),
        "milvus": Process("milvus", commands["milvus"], folder, ports["milvus"]),
        "workers": Process(
            "workers", [*python, "rundramatiq", "--processes", "2", "--threads", "4"], folder
        ),
        "scheduler": Process("scheduler", [*python, "scheduler"], folder),
    }
    print(f"folder: {folder}")
    with OpenRouterServer(port=ports["openrouter"], hang_seconds=10) as provider:
        try:
            stack["redis"].start()
            stack["milvus"].start()
            bench = Bench(folder, stack, provider)
            bench.prepare()
            bench.reconcile()  # nothing in flight yet: the key's baseline
            stack["workers"].start()
            stack["scheduler"].start()
            bench.wait_indexed()
            rows = []
            for scenario in args.scenarios:
                rows.append(getattr(bench, f"scenario_{scenario}")(args))
            report(rows)
            return 0 if all(row["ok"] for row in rows) else 1
        finally:
            for process in reversed(stack.values()):
                process.stop()
            if not args.keep:
                import shutil

                shutil.rmtree(folder, ignore_errors=True)


class Bench:
    def __init__(self, folder: Path, stack: dict[str, Process], provider):
        self.folder, self.stack, self.provider = folder, stack, provider

    # --- setting up ---------------------------------------------------------------------

    def prepare(self) -> None:
        from django.core.management import call_command

        from catalog.importer import DirectoryImages, catalog_import
        from demo.sample import write_sample_catalog

        call_command("migrate", verbosity=0)
        sample = write_sample_catalog(self.folder / "sample")
        for csv_path, images in (
            (sample.products_csv, "images"),
            (sample.new_products_csv, "new_products"),
        ):
            result = catalog_import(
                csv_data=csv_path.read_bytes(), images=DirectoryImages(sample.directory / images)
            )
            assert result.ok, result.errors
        self.sample = sample

    def new_products(self, prefix: str, count: int) -> list:
        """`count` new products with the sample's new flat-lays (their categories have bestsellers)."""
        from catalog.images import image_prepare
        from catalog.models import Product
        from catalog.services import product_save
        from demo.sample import NEW_PRODUCTS

        made = []
        for n in range(count):
            model = NEW_PRODUCTS[n % len(NEW_PRODUCTS)]
            photo = (self.sample.directory / "new_products" / f"{model.new_id}.jpg").read_bytes()
            product = Product(
                sku=f"{prefix}{n + 1:03d}",
                category=model.category,
                style=model.style,
                season=model.season,
                prompt_hint=model.prompt_hint,
            )
            made.append(product_save(product=product, image=image_prepare(photo)))
        return made

    def wait_indexed(self, timeout: float = 300) -> None:
        from catalog.models import IndexState, Product

        deadline = time.monotonic() + timeout
        while Product.objects.exclude(index_state=IndexState.SYNCED).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the catalog did not reach the index")
            time.sleep(1)

    def batch(self, products: list, size: str = "1K"):
        from generation.models import ChannelPreset
        from generation.services import BatchRequest, batch_create

        preset = ChannelPreset.objects.get(name="Storefront hero")
        return batch_create(
            user=None,
            request=BatchRequest(products, [preset], size, 1),
            estimated_cost=Decimal("0"),
        )

    # --- measuring ----------------------------------------------------------------------

    def wait_done(self, batch, timeout: float) -> float:
        """Seconds until every asset of the batch reached an end state (or the timeout)."""
        from generation.models import AssetStatus

        started = time.monotonic()
        while batch.assets.filter(status__in=AssetStatus.running()).exists():
            if time.monotonic() - started > timeout:
                break
            time.sleep(0.5)
        return time.monotonic() - started

    def figures(
        self,
        name: str,
        batch,
        skus: set[str],
        marks: dict,
        seconds: float,
        drift: int | None = None,
        attempted: int | None = None,
        lost: int = 0,
    ) -> dict:
        from generation.models import AssetStatus

        assets = list(batch.assets.all()) if batch is not None else []
        self.reconcile()
        bills = self.provider.bills[marks["bills"] :]
        counted = Counter((bill.kind, bill.subject) for bill in bills if bill.subject in skus)
        twice = sum(1 for n in counted.values() if n > 1)
        if twice:
            repeated = sorted(key for key, n in counted.items() if n > 1)
            print(f"   paid twice: {repeated}")
        booked, unattributed = self.ledger()
        booked -= marks["booked"]
        unattributed -= marks["unattributed"]
        billed = sum((Decimal(str(bill.cost)) for bill in bills), Decimal("0"))
        failed = [asset for asset in assets if asset.status == AssetStatus.FAILED]
        stuck = sum(1 for asset in assets if asset.status in AssetStatus.running())
        if drift is None:
            drift = self.drift()
        row = {
            "scenario": name,
            "attempted": attempted if attempted is not None else len(assets),
            "in review": sum(1 for asset in assets if asset.status == AssetStatus.IN_REVIEW),
            "failed": len(failed),
            "with reason": sum(1 for asset in failed if asset.failure_reason),
            "stuck": stuck,
            "paid twice": twice,
            "lost in flight": lost,
            "booked": booked,
            "unattributed": unattributed,
            "billed": billed,
            "drift": drift,
            "seconds": seconds,
            "reasons": Counter(asset.failure_reason.split(":")[0][:60] for asset in failed),
        }
        row["ok"] = (
            stuck == 0
            and twice <= lost
            and booked == billed
            and drift == 0
            and row["with reason"] == row["failed"]
            and seconds <= TARGET_SECONDS
        )
        return row

    def ledger(self) -> tuple[Decimal, Decimal]:
        """The ledger's total and its unattributed part."""
        from core.models import ProviderCall

        def total(calls) -> Decimal:  # exact: SQLite's SUM adds decimals as floats
            return sum(calls.values_list("cost", flat=True), Decimal("0"))

        calls = ProviderCall.objects.all()
        return total(calls), total(calls.filter(kind=ProviderCall.Kind.UNATTRIBUTED))

    def reconcile(self, timeout: float = 180) -> None:
        """Run the spending reconcile until every reservation is settled (a reservation that
        may have been billed waits for the settle window)."""
        from core.models import SpendReservation
        from core.reconcile import spend_reconcile

        deadline = time.monotonic() + timeout
        while True:
            run = spend_reconcile()
            if run.error:
                print(f"   reconcile: {run.error}")
            elif not SpendReservation.objects.exists() or time.monotonic() > deadline:
                return
            time.sleep(2)

    def drift(self) -> int:
        """Rows that differ between the database and Milvus once the reconcile has run."""
        from catalog.indexing import index_check

        deadline = time.monotonic() + 180
        while True:
            total = index_check(repair=False).total
            if total == 0 or time.monotonic() > deadline:
                return total
            time.sleep(5)

    def marks(self) -> dict:
        booked, unattributed = self.ledger()
        return {"bills": len(self.provider.bills), "booked": booked, "unattributed": unattributed}

    # --- the scenarios ------------------------------------------------------------------

    def scenario_a(self, args) -> dict:
        print(f"a: {args.assets} assets, 20 % provider faults ...", flush=True)
        products = self.new_products("A", args.assets)
        self.wait_indexed()
        marks = self.marks()
        self.provider.fault_rate, self.provider.latency = 0.2, 0.05
        batch = self.batch(products)
        seconds = self.wait_done(batch, timeout=900)
        self.provider.fault_rate, self.provider.latency = 0.0, 0.0
        faults = Counter(self.provider.faults_injected)
        print(f"   faults injected: {dict(faults)}")
        # The fault run has no "after the fault": its time is the whole run's. A hung call is
        # billed when the provider finishes it, after the client gave up: lost in flight.
        row = self.figures(
            "a 20% faults", batch, {p.sku for p in products}, marks, 0.0, lost=faults["hang"]
        )
        row["note"] = f"whole run {seconds:.0f} s"
        return row

    def scenario_b(self, args) -> dict:
        from generation.models import AssetStatus

        print(
            f"b: kill -9 every worker in a batch of {args.kill_batch}, 1 s latency ...", flush=True
        )
        products = self.new_products("B", args.kill_batch)
        self.wait_indexed()
        marks = self.marks()
        self.provider.latency = 1.0
        batch = self.batch(products)
        while batch.assets.filter(status=AssetStatus.IN_REVIEW).count() < args.kill_batch // 4:
            time.sleep(0.2)
        unfinished = batch.assets.filter(status__in=AssetStatus.running()).count()
        calls = self.chat_calls_in_flight()
        self.stack["workers"].kill(signal.SIGKILL)
        print(
            f"   killed the workers with {unfinished} assets unfinished and {calls} provider "
            "calls in flight; starting them again",
            flush=True,
        )
        self.stack["workers"].start()
        seconds = self.wait_done(batch, timeout=600)
        self.provider.latency = 0.0
        return self.figures(
            "b kill -9 workers", batch, {p.sku for p in products}, marks, seconds, lost=calls
        )

    def scenario_e(self, args) -> dict:
        from generation.models import AssetStatus

        print(f"e: SIGTERM every worker in a batch of {args.kill_batch} ...", flush=True)
        products = self.new_products("E", args.kill_batch)
        self.wait_indexed()
        marks = self.marks()
        self.provider.latency = 1.0
        batch = self.batch(products)
        while batch.assets.filter(status=AssetStatus.IN_REVIEW).count() < args.kill_batch // 4:
            time.sleep(0.2)
        calls = self.chat_calls_in_flight()
        stopping = time.monotonic()
        self.stack["workers"].stop_gracefully()
        print(
            f"   stopped the workers with {calls} provider calls in flight in "
            f"{time.monotonic() - stopping:.1f} s; starting them again",
            flush=True,
        )
        self.stack["workers"].start()
        seconds = self.wait_done(batch, timeout=600)
        self.provider.latency = 0.0
        row = self.figures("e SIGTERM workers", batch, {p.sku for p in products}, marks, seconds)
        row["note"] = f"{calls} calls in flight at the stop finished and were booked"
        return row

    def chat_calls_in_flight(self) -> int:
        """Paid calls the provider is working on right now (embeddings here are free)."""
        return sum(
            1 for r in list(self.provider.in_flight.values()) if r.path.endswith("/completions")
        )

    def scenario_c(self, args) -> dict:
        from catalog.models import IndexState, Product
        from catalog.services import product_save

        print(
            "c: Redis stopped while a batch is requested and 5 products are edited ...", flush=True
        )
        products = self.new_products("C", 4)
        self.wait_indexed()
        marks = self.marks()
        self.stack["redis"].stop()
        batch = self.batch(products)
        edited = list(
            Product.objects.filter(lifecycle=Product.Lifecycle.HISTORICAL).order_by("pk")[:5]
        )
        for product in edited:
            product.description += " (edited while Redis was down)"
            product_save(product=product)
        shown = batch.assets.first().last_error
        print(f"   the batch page says: {shown!r}", flush=True)
        self.stack["redis"].start()
        started = time.monotonic()
        self.wait_done(batch, timeout=600)
        while (
            Product.objects.filter(pk__in=[p.pk for p in edited])
            .exclude(index_state=IndexState.SYNCED)
            .exists()
            and time.monotonic() - started < 600
        ):
            time.sleep(0.5)
        seconds = time.monotonic() - started
        return self.figures("c Redis down", batch, {p.sku for p in products}, marks, seconds)

    def scenario_d(self, args) -> dict:
        from catalog.models import IndexState, Product
        from catalog.services import product_save

        print("d: Milvus stopped while 10 descriptions are edited ...", flush=True)
        self.stack["milvus"].stop()
        edited = list(
            Product.objects.filter(lifecycle=Product.Lifecycle.HISTORICAL).order_by("-pk")[:10]
        )
        for product in edited:
            product.description = (
                f"{product.description} Restyled for a new season (edit {product.pk})."
            )
            product_save(product=product)
        time.sleep(5)  # their sync messages meet a Milvus that is away
        self.stack["milvus"].start()
        started = time.monotonic()
        while (
            Product.objects.filter(pk__in=[p.pk for p in edited])
            .exclude(index_state=IndexState.SYNCED)
            .exists()
            and time.monotonic() - started < 600
        ):
            time.sleep(0.5)
        drift = self.drift()
        seconds = time.monotonic() - started
        row = self.figures(
            "d Milvus down", None, set(), self.marks(), seconds, drift=drift, attempted=len(edited)
        )
        row["note"] = "10 description edits"
        return row


def report(rows: list[dict]) -> None:
    columns = [
        "scenario",
        "attempted",
        "in review",
        "failed",
        "with reason",
        "stuck",
        "paid twice",
        "lost in flight",
        "booked",
        "unattributed",
        "billed",
        "drift",
        "seconds",
    ]
    table = [columns] + [[_cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    print()
    for line in table:
        print(
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
        )
    print()
    print(
        "targets: stuck 0; paid twice <= lost in flight; booked (the ledger after the spending "
        "reconcile, unattributed spend included) = billed to the cent; drift 0 after the index "
        f"reconcile; every asset at an end state within {TARGET_SECONDS} s after the fault ends"
    )
    for row in rows:
        verdict = "meets the targets" if row["ok"] else "MISSES a target"
        reasons = "; ".join(f"{n} × {reason}" for reason, n in row["reasons"].most_common())
        extra = f" ({row['note']})" if row.get("note") else ""
        print(f"{row['scenario']}: {verdict}{extra}" + (f"; failed: {reasons}" if reasons else ""))


def _cell(value) -> str:
    if isinstance(value, Decimal):
        return f"${value:.4f}"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
