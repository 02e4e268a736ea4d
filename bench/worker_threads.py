"""One worker host with many calls in flight: its database connections and its memory.

Starts PostgreSQL (initdb in a throw-away folder, as the `postgres` user when run as root), a
redis-server (broker and rate limiter), the OpenRouter-protocol server of the tests in this
process with a fixed latency per call, and the Procfile's worker line as it is, except that it
takes only the generation queues (the catalog's index sync would need Milvus, and is not what
is measured). A bulk batch of N images whose retrieval is done is requested; each image makes
three calls (style analysis, image, quality check). Every 0.2 s it samples the calls in flight
at the provider, the database's connections from the worker (pg_stat_activity) and the
resident memory of the worker's processes; it prints the peaks, the median while the drop
runs, and the drop's throughput.

    .venv/bin/python bench/worker_threads.py [--images 320] [--latency 2] [--threads T]
        [--bulk-messages M] [--rate-limit CALLS/SECONDS]

Why threads, and what these figures were: the docstring of generation/tasks.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from stack import Process, free_port, procfile_commands, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start_postgres(folder: Path, port: int) -> tuple[subprocess.Popen, str]:
    """A PostgreSQL cluster of its own; returns the server and its URL."""
    data = folder / "pg"
    data.mkdir()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        subprocess.run(["chown", "-R", "postgres", str(folder)], check=True)
    subprocess.run(
        [*as_user, "initdb", "-D", str(data), "-A", "trust", "-U", "bench"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [*as_user, "postgres", "-D", str(data), "-p", str(port), "-k", str(folder)],
        stdout=open(folder / "postgres.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port)
    time.sleep(0.5)
    subprocess.run(
        [*as_user, "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "bench", "bench"],
        check=True,
    )
    return server, f"postgres://bench@127.0.0.1:{port}/bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per provider call")
    parser.add_argument(
        "--rate-limit",
        help="the provider's limit per model, CALLS/SECONDS (a sliding window; default none)",
    )
    parser.add_argument(
        "--threads", type=int, help="the worker's threads (default: the Procfile's line as it is)"
    )
    parser.add_argument(
        "--bulk-messages", type=int, help="GENERATION_BULK_MESSAGES (default: the setting's)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="worker-threads-"))
    os.chmod(folder, 0o777)
    ports = {name: free_port() for name in ("redis", "openrouter", "postgres", "milvus", "web")}
    postgres, database_url = start_postgres(folder, ports["postgres"])
    try:
        return measure(args, folder, ports, database_url)
    finally:
        postgres.terminate()
        postgres.wait()
        shutil.rmtree(folder, ignore_errors=True)


def measure(args, folder: Path, ports: dict[str, int], database_url: str) -> int:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-worker-threads",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url,
        "DJANGO_MEDIA_ROOT": str(folder / "media"),
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "TASK_BROKER": "redis",
        "OPENROUTER_API_KEY": "test-openrouter-key",
        "OPENROUTER_BASE_URL": f"http://127.0.0.1:{ports['openrouter']}/api/v1",
        "EMBEDDER_BACKEND": "catalog.embedders.offline.OfflineEmbedder",
        "LOG_LEVEL": "WARNING",
    }
    if args.bulk_messages:
        env["GENERATION_BULK_MESSAGES"] = str(args.bulk_messages)
        env["OPENROUTER_CONCURRENCY_CEILING"] = str(args.bulk_messages)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = "bench"

    from tests.openrouter_server import OpenRouterServer

    commands = procfile_commands(folder, ports)
    worker_line = commands["worker"]
    if args.threads:
        worker_line[worker_line.index("--threads") + 1] = str(args.threads)
    print("worker:", " ".join(worker_line[1:]), "(generation queues only)")
    redis = Process("redis", commands["redis"], folder, ports["redis"])
    worker = Process(
        "worker",
        [*worker_line, "--queues", "generation", "generation-interactive"],
        folder,
        env=env,
    )
    samples: list[tuple[float, int, int, int]] = []
    rate_limit = None
    if args.rate_limit:
        calls, _, seconds = args.rate_limit.partition("/")
        rate_limit = (int(calls), float(seconds))
    with OpenRouterServer(
        port=ports["openrouter"], latency=args.latency, rate_limit=rate_limit
    ) as provider:
        try:
            redis.start()
            call_command("migrate", verbosity=0)
            batch = request_drop(args.images)
            worker.start()
            started = time.monotonic()
            stop = threading.Event()
            sampler = threading.Thread(
                target=sample, args=(provider, [worker], samples, stop), daemon=True
            )
            sampler.start()
            done, _ = wait_done(batch, timeout=max(600, args.images * 3 * args.latency))
            stop.set()
            sampler.join()
            seconds = time.monotonic() - started
            from core.ratelimit import limiter_state

            pacing = limiter_state()
        finally:
            worker.stop()
            redis.stop()
    report(samples, args, seconds, done, provider, pacing)
    return 0


def request_drop(images: int):
    """A bulk batch of `images` assets whose retrieval is done, dispatched on commit."""
    from decimal import Decimal

    from django.db import transaction
    from django.utils import timezone

    from generation.models import AssetReference, ChannelPreset
    from generation.services import BatchRequest, batch_create
    from tests.factories import make_product

    with transaction.atomic():
        reference = make_product("BEST", color="navy", sales_count=5000)
        products = [make_product(f"NEW-{n:05d}", color="red") for n in range(images)]
        batch = batch_create(
            user=None,
            request=BatchRequest(
                products, [ChannelPreset.objects.get(name="Storefront hero")], "1K", 1
            ),
            estimated_cost=Decimal("0"),
        )
        AssetReference.objects.bulk_create(
            AssetReference(asset=asset, product=reference, rank=1, score=0.03)
            for asset in batch.assets.all()
        )
        batch.assets.update(retrieved_at=timezone.now())
    return batch


def sample(provider, processes: list[Process], samples: list, stop: threading.Event) -> None:
    """Every 0.2 s, (time, calls in flight at the provider, the database's connections from the
    worker host: every backend but the bench's own, the resident memory of `processes` with
    everything they started)."""
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        dbname=database["NAME"],
        autocommit=True,
    ) as probe:
        while not stop.wait(0.2):
            # Every backend of the database but this probe's and the bench process's own.
            [(connections,)] = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND application_name <> 'bench'"
            ).fetchall()
            memory = sum(process.tree_rss() for process in processes)
            samples.append((time.monotonic(), len(provider.in_flight), connections, memory))


def wait_done(batch, timeout: float) -> tuple[int, int]:
    """Waits until no image of the drop runs; (in review, failed)."""
    from django.db import connection

    from generation.models import AssetStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = batch.assets.filter(status__in=AssetStatus.running()).count()
        connection.close()  # the bench's own connection is not the worker's
        if not running:
            break
        time.sleep(0.5)
    return (
        batch.assets.filter(status=AssetStatus.IN_REVIEW).count(),
        batch.assets.filter(status=AssetStatus.FAILED).count(),
    )


def report(samples, args, seconds: float, done: int, provider, pacing: dict) -> None:
    busy = [s for s in samples if s[1] >= 1]
    in_flight = [s[1] for s in busy] or [0]
    connections = [s[2] for s in samples] or [0]
    rss = [s[3] for s in samples] or [0]
    print(f"{args.images} images × 3 calls at {args.latency:g} s a call: {seconds:.0f} s")
    print(f"  in review            {done} of {args.images}")
    print(f"  throughput           {done / seconds * 60:.0f} images a minute")
    print(f"  calls in flight      peak {max(in_flight)}, median {statistics.median(in_flight)}")
    print(
        f"  database connections peak {max(connections)}, "
        f"median {statistics.median(c for _, _, c, _ in busy) if busy else 0}"
    )
    print(f"  worker memory        peak {max(rss) / 2**20:.0f} MiB (all its processes)")
    print(f"  provider             peak in flight {provider.peak_in_flight}")
    chats = [r for r in provider.requests if r.path.endswith("/chat/completions")]
    if args.rate_limit:
        share = len(provider.rate_limited) / max(len(chats), 1)
        print(
            f"  429s                 {len(provider.rate_limited)} of {len(chats)} calls ({share:.1%})"
        )
    for model, pace in pacing.items():
        print(
            f"  {model}: limit now {pace.limit:.1f}, {pace.rate_limited} 429s, "
            f"{pace.waited_seconds:.0f} s waited for slots in all"
        )


if __name__ == "__main__":
    raise SystemExit(main())
