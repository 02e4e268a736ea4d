"""A big historical-catalog import through the admin, over HTTP, on the Procfile's topology.

In a throw-away folder, on free ports: the Procfile's redis-server (append-only), milvus-lite
server, gunicorn web tier, Dramatiq worker and scheduler, with the production settings that
bin/setup writes for plain http on 127.0.0.1 (SQLite in the folder, or --database-url). It
writes --rows products of the historical catalog format, each with its own 200×250 flat-lay
JPEG, the photos in one ZIP, and then does what a merchandiser's browser does: logs in, uploads
the CSV and the ZIP the way the import page's script does (declares them, sends each in slices
of CATALOG_IMPORT_SLICE_BYTES, one POST a slice, then finishes), follows the import's page
(progress.json every second, the page again when the state changes), confirms when the check
is done, follows the write, and then watches the index status page until every product is in
Milvus.

It prints each request's wall time against the 2 s target (the slices and the progress polls
as p50, p95 and the slowest), each phase's time (upload, check, wait for confirm, write, index
sync), the peak resident memory of each process with everything it started (sampled every
0.5 s), and the final counts with the import's summary.

    .venv/bin/python bench/import_http.py [--rows 100000] [--database-url postgres://...]
                                          [--slice-bytes 8388608] [--keep]

--database-url names an empty database (it is migrated, not emptied).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import requests
from import_index import catalog_csv, write_photos
from stack import ROOT, Process, free_port, procfile_commands

TARGET_SECONDS = 2.0  # every request
PHOTO_SIZE = (200, 250)
ZIP_LIMIT_DEFAULT = 1024 * 1024 * 1024  # CATALOG_IMPORT_MAX_ZIP_BYTES' default
USERNAME = "bench-merchandiser"
MB = 1024 * 1024


# --- the catalog ------------------------------------------------------------------------


def write_catalog(folder: Path, rows: int) -> tuple[Path, Path, float]:
    """The CSV and the ZIP of its photos (stored: JPEGs do not compress); photos are drawn on
    every core. Returns both paths and the seconds it took."""
    started = time.monotonic()
    photos = folder / "photos"
    step = 1000
    jobs = [(photos, min(step, rows - start), start, PHOTO_SIZE) for start in range(0, rows, step)]
    with multiprocessing.Pool() as pool:
        pool.starmap(write_photos, jobs)
    csv_path, zip_path = folder / "catalog.csv", folder / "photos.zip"
    csv_path.write_bytes(catalog_csv(rows))
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for n in range(rows):
            archive.write(photos / f"P{n:07}.jpg", f"P{n:07}.jpg")
    shutil.rmtree(photos)
    return csv_path, zip_path, time.monotonic() - started


# --- the stack --------------------------------------------------------------------------


def environment(folder: Path, ports: dict[str, int], database_url: str, zip_limit: int | None):
    """What the stack's processes see: the production settings bin/setup writes for plain http
    on 127.0.0.1, everything else in the folder; nothing from this shell's or .env's settings."""
    mine = ("DJANGO_", "AWS_", "MILVUS_", "OPENROUTER_", "PUBLISHED_", "CATALOG_", "INDEX_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(mine)}
    env.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SESSION_COOKIE_SECURE": "0",
            "DJANGO_CSRF_COOKIE_SECURE": "0",
            "DJANGO_SECURE_HSTS_SECONDS": "0",
            "DJANGO_STATIC_ROOT": str(folder / "static"),
            "DJANGO_MEDIA_ROOT": str(folder / "media"),
            "DATABASE_URL": database_url,
            "MILVUS_URI": f"http://127.0.0.1:{ports['milvus']}",
            "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "TASK_BROKER": "redis",
            "EMBEDDER_BACKEND": "catalog.embedders.offline.OfflineEmbedder",
            "OPENROUTER_API_KEY": "",
            "WEB_PORT": str(ports["web"]),
        }
    )
    if zip_limit is not None:
        env["CATALOG_IMPORT_MAX_ZIP_BYTES"] = str(zip_limit)
    return env


def manage(env: dict[str, str], folder: Path, *args: str) -> None:
    with open(folder / "manage.log", "ab") as log:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            check=True,
        )


class MemorySampler(threading.Thread):
    """Resident memory of each process tree every `every` seconds: first, peak and last."""

    def __init__(self, processes: dict[str, Process], every: float = 0.5):
        super().__init__(daemon=True)
        self.processes, self.every = processes, every
        self.first: dict[str, int] = {}
        self.peak: dict[str, int] = dict.fromkeys(processes, 0)
        self.last: dict[str, int] = {}
        self.peak_total = 0
        self.samples = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            sizes = {name: process.tree_rss() for name, process in self.processes.items()}
            if not self.first:
                self.first = sizes
            self.last = sizes
            for name, size in sizes.items():
                self.peak[name] = max(self.peak[name], size)
            self.peak_total = max(self.peak_total, sum(sizes.values()))
            self.samples += 1
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


# --- the browser's side -----------------------------------------------------------------


class Browser:
    """A requests session that times every request it makes."""

    def __init__(self, base: str):
        self.base, self.session = base, requests.Session()
        self.timed: list[tuple[str, float, int]] = []  # (what, seconds, status)
        self.polls: list[tuple[str, float]] = []  # (state at the time, seconds)
        self.index_polls: list[float] = []
        self.slices: list[tuple[float, int]] = []  # (seconds, bytes) of each slice's POST

    def request(self, method: str, path: str, what: str | None, **kwargs) -> requests.Response:
        started = time.monotonic()
        response = self.session.request(
            method, self.base + path, allow_redirects=False, timeout=600, **kwargs
        )
        seconds = time.monotonic() - started
        if what is not None:
            self.timed.append((what, seconds, response.status_code))
        response.seconds = seconds
        return response

    def token(self, html: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def wait_healthy(browser: Browser, timeout: float = 120) -> None:
    """Until the web tier answers (its workers have loaded the app): the login page, untimed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if browser.request("GET", "/admin/login/", None).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the web tier does not answer")


def log_in(browser: Browser, password: str) -> None:
    page = browser.request("GET", "/admin/login/", "GET login page")
    answer = browser.request(
        "POST",
        "/admin/login/",
        "POST login",
        data={
            "username": USERNAME,
            "password": password,
            "csrfmiddlewaretoken": browser.token(page.text),
            "next": "/admin/",
        },
    )
    if answer.status_code != 302 or "sessionid" not in browser.session.cookies:
        raise RuntimeError(f"the login failed ({answer.status_code})")


def upload(browser: Browser, csv_path: Path, zip_path: Path) -> tuple[str, int]:
    """What the import page's script does: declare the files, send each in slices (one POST
    each, the slice size the server gives), then finish; returns the import's page and the
    bytes sent."""
    page = browser.request("GET", "/admin/catalog/product/import/", "GET import page")
    headers = {"X-CSRFToken": browser.token(page.text), "Referer": browser.base}
    files = {"csv_file": csv_path, "images_zip": zip_path}
    declared = {"kind": "historical"}
    for field, path in files.items():
        declared[f"{field}_name"], declared[f"{field}_size"] = path.name, path.stat().st_size
    start_url = re.search(r'data-upload-url="([^"]+)"', page.text).group(1)
    started = browser.request(
        "POST", start_url, "POST upload: declare the files", data=declared, headers=headers
    )
    if started.status_code != 201:
        raise RuntimeError(f"the upload was not accepted ({started.status_code}): {started.text}")
    started = started.json()
    size = started["slice_bytes"]
    for field, path in files.items():
        with open(path, "rb") as handle:
            index = 0
            while piece := handle.read(size):
                answer = browser.request(
                    "POST",
                    f"{started['upload_url']}{field}/{index}/",
                    None,
                    data=piece,
                    headers={**headers, "Content-Type": "application/octet-stream"},
                )
                browser.slices.append((answer.seconds, len(piece)))
                if answer.status_code != 200:
                    raise RuntimeError(f"slice {index} of {path.name}: {answer.text}")
                index += 1
    answer = browser.request("POST", started["finish_url"], "POST upload: finish", headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"the upload was not finished ({answer.status_code}): {answer.text}")
    return answer.json()["url"], sum(path.stat().st_size for path in files.values())


def page_state(html: str) -> str:
    """The state the import's page shows (its script reloads it when the state changes)."""
    return re.search(r'data-state="([^"]*)"', html).group(1)


def follow(
    browser: Browser, job_page: str, until: set[str], seen: dict[str, float], timeout: float
) -> tuple[dict, str]:
    """The import's page, as a browser follows it: loaded, then progress.json a second after
    each answer, and the page again whenever the state changes. Returns the progress and the
    page at one of the states `until`."""
    progress_url = job_page.replace("/change/", "/progress.json")
    page = browser.request("GET", job_page, "GET import's page")
    state = page_state(page.text)
    what, seconds, status = browser.timed[-1]
    browser.timed[-1] = (f"{what} ({state})", seconds, status)
    seen.setdefault(state, time.monotonic())
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(1)
        answer = browser.request("GET", progress_url, None)
        progress = answer.json()
        browser.polls.append((progress["state"], answer.seconds))
        if progress["state"] != state:
            state = progress["state"]
            seen.setdefault(state, time.monotonic())
            page = browser.request("GET", job_page, f"GET import's page ({state})")
        if state in until:
            return progress, page.text
        if not progress["running"]:
            raise RuntimeError(f"the import ended {state}: {progress['note']}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the import is still {state} after {timeout:.0f} s")


def index_status(browser: Browser) -> dict:
    answer = browser.request("GET", "/admin/catalog/product/index-status/", None)
    browser.index_polls.append(answer.seconds)
    html = answer.text

    def cell(title: str) -> str:
        return re.search(rf"<th>{re.escape(title)}</th><td>(.*?)</td>", html, re.S).group(1)

    states = {
        name: int(n) for name, n in re.findall(r"(\w+): (\d+)", cell("Products by index state"))
    }
    rows = cell("Rows in Milvus")
    return {
        "products": int(cell("Products in the database")),
        "states": states,
        "milvus": int(rows) if rows.isdigit() else None,
    }


def wait_indexed(browser: Browser, timeout: float) -> dict:
    """The index status page, reloaded every second until every product is synced; then, for
    up to a minute, until Milvus counts them all (its count follows its flushes)."""
    deadline = time.monotonic() + timeout
    while True:
        status = index_status(browser)
        states = status["states"]
        if states.get("synced", 0) == status["products"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every product is in the index: {states}")
        time.sleep(1)
    indexed = time.monotonic()
    while status["milvus"] != status["products"] and time.monotonic() < indexed + 60:
        time.sleep(1)
        status = index_status(browser)
    status["at"] = indexed
    return status


# --- the report -------------------------------------------------------------------------


def verdict(seconds: float) -> str:
    return "ok" if seconds <= TARGET_SECONDS else "OVER the 2 s target"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    return (
        f"{len(values):>4} × p50 {statistics.median(values):.3f} s, "
        f"p95 {percentile(values, 0.95):.3f} s, max {max(values):.3f} s"
    )


def report_requests(browser: Browser, upload_bytes: int) -> list[str]:
    over = []
    print(f"\nrequests (wall time of each; target {TARGET_SECONDS:.0f} s)")
    for what, seconds, status in browser.timed:
        print(f"  {what:<38} {status}  {seconds:7.3f} s  {verdict(seconds)}")
        if seconds > TARGET_SECONDS:
            over.append(f"{what} {seconds:.1f} s")
    slices = [seconds for seconds, _ in browser.slices]
    late = sum(seconds > TARGET_SECONDS for seconds in slices)
    print(
        f"  upload slices       {spread(slices)}: {verdict(max(slices))}"
        f" ({upload_bytes / MB / sum(slices):,.0f} MB/s; {late} over the target)"
    )
    if late:
        over.append(f"{late} upload slices, the slowest {max(slices):.1f} s")
    polls = [seconds for _, seconds in browser.polls]
    slowest_state, slowest = max(browser.polls, key=lambda poll: poll[1])
    print(
        f"  progress.json polls {spread(polls)} (slowest while {slowest_state}): {verdict(slowest)}"
    )
    for state in dict.fromkeys(state for state, _ in browser.polls):
        print(f"    while {state:<10} {spread([s for st, s in browser.polls if st == state])}")
    if slowest > TARGET_SECONDS:
        over.append(f"progress.json while {slowest_state} {slowest:.1f} s")
    index = browser.index_polls
    print(f"  index status page   {spread(index)}: {verdict(max(index))}")
    if max(index) > TARGET_SECONDS:
        over.append(f"index status page {max(index):.1f} s")
    return over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database (default: SQLite in the folder)"
    )
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per phase")
    parser.add_argument(
        "--slice-bytes", type=int, help="CATALOG_IMPORT_SLICE_BYTES (default: the setting's)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, database)")
    args = parser.parse_args()
    began = time.monotonic()

    folder = Path(tempfile.mkdtemp(prefix="bench-http-"))
    database_url = args.database_url or f"sqlite:///{folder / 'db.sqlite3'}"
    print(
        f"{args.rows:,} rows through the admin over HTTP; folder {folder}; {os.cpu_count()} cores; "
        f"database {database_url.split(':')[0]}"
    )
    csv_path, zip_path, seconds = write_catalog(folder, args.rows)
    zip_bytes, csv_bytes = zip_path.stat().st_size, csv_path.stat().st_size
    print(
        f"catalog: {args.rows:,} distinct {PHOTO_SIZE[0]}×{PHOTO_SIZE[1]} JPEG flat-lays written "
        f"and zipped in {seconds:.0f} s; ZIP {zip_bytes / MB:,.1f} MB, CSV {csv_bytes / MB:,.1f} MB"
    )
    zip_limit = None
    if zip_bytes > ZIP_LIMIT_DEFAULT:
        zip_limit = zip_bytes + 64 * MB
        print(
            f"the ZIP is over the 1 GiB default of CATALOG_IMPORT_MAX_ZIP_BYTES: raised to "
            f"{zip_limit:,} bytes for this stack"
        )
    else:
        print("the ZIP is within CATALOG_IMPORT_MAX_ZIP_BYTES' 1 GiB default (not raised)")

    ports = {name: free_port() for name in ("redis", "milvus", "web")}
    env = environment(folder, ports, database_url, zip_limit)
    if args.slice_bytes:
        env["CATALOG_IMPORT_SLICE_BYTES"] = str(args.slice_bytes)
    commands = procfile_commands(folder, ports)
    stack = {
        name: Process(name, commands[name], folder, ports.get(name), env)
        for name in ("redis", "milvus", "web", "worker", "scheduler")
    }
    sampler = MemorySampler(stack)
    try:
        started = time.monotonic()
        password = secrets.token_urlsafe(16)
        manage(env, folder, "migrate", "--noinput")
        manage(env, folder, "collectstatic", "--noinput")
        manage(
            env, folder, "create_user", USERNAME, "--role", "merchandiser", "--password", password
        )
        for process in stack.values():
            process.start()
        browser = Browser(f"http://127.0.0.1:{ports['web']}")
        wait_healthy(browser)
        print(
            f"stack ready in {time.monotonic() - started:.0f} s (migrate, collectstatic, user, "
            "then the Procfile's processes):"
        )
        for process in stack.values():
            print(f"  {process.name:<9} {' '.join(process.command)}")
        sampler.start()

        log_in(browser, password)
        seen: dict[str, float] = {}
        upload_started = time.monotonic()
        job_page, upload_bytes = upload(browser, csv_path, zip_path)
        uploaded = time.monotonic()
        _, page = follow(browser, job_page, {"checked"}, seen, args.timeout)
        checked = seen["checked"]
        confirm = browser.request(
            "POST",
            job_page,
            "POST confirm",
            data={"csrfmiddlewaretoken": browser.token(page), "action": "confirm"},
        )
        confirmed = time.monotonic()
        if confirm.status_code != 302:
            raise RuntimeError(f"the confirmation was not accepted ({confirm.status_code})")
        final, _ = follow(browser, job_page, {"done"}, seen, args.timeout)
        done = seen["done"]
        status = wait_indexed(browser, args.timeout)
        browser.request("GET", "/admin/catalog/product/", "GET product list")
        browser.request("GET", "/admin/catalog/catalogimport/", "GET imports list")
        sampler.stop()

        over = report_requests(browser, upload_bytes)
        print("\nphases (the polls see a state change within about a second)")
        phases = [
            ("upload (declare, slices, finish)", uploaded - upload_started),
            ("check (upload answered → checked)", checked - uploaded),
            ("wait for confirm (→ confirm answered)", confirmed - checked),
            ("write (confirm answered → done)", done - confirmed),
            ("index sync (done → all synced)", status["at"] - done),
        ]
        for what, seconds in phases:
            print(f"  {what:<40} {seconds:8.1f} s")
        print(f"  {'total':<40} {status['at'] - upload_started:8.1f} s")
        moments = ", ".join(f"{state} +{at - upload_started:.1f} s" for state, at in seen.items())
        print(f"  states first seen: {moments}")

        print(f"\npeak resident memory ({sampler.samples} samples, every 0.5 s; each process tree)")
        labels = {
            "web": "web (gunicorn master + 2 workers)",
            "worker": "worker (rundramatiq + its processes)",
            "milvus": "milvus (milvus-lite server)",
            "redis": "redis",
            "scheduler": "scheduler",
        }
        for name, label in labels.items():
            print(
                f"  {label:<38} idle {sampler.first[name] / MB:7.0f} MB  peak "
                f"{sampler.peak[name] / MB:7.0f} MB  at the end {sampler.last[name] / MB:7.0f} MB"
            )
        print(f"  {'all together':<38} peak {sampler.peak_total / MB:7.0f} MB")

        print("\nresult")
        print(f"  the import: {final['summary']}")
        states = ", ".join(f"{name} {n:,}" for name, n in status["states"].items())
        milvus = f"{status['milvus']:,}" if status["milvus"] is not None else "—"
        print(
            f"  products in the database {status['products']:,} ({states}); rows in Milvus {milvus}"
        )
        print(
            "  every request within 2 s"
            if not over
            else "  OVER the 2 s target: " + "; ".join(over)
        )
        print(f"  the whole run took {time.monotonic() - began:.0f} s")
        return 0 if not over and status["milvus"] == status["products"] else 1
    finally:
        if sampler.is_alive():
            sampler.stop()
        for process in reversed(stack.values()):
            process.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
