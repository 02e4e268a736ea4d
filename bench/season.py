"""A season drop against a rate-limited provider, on the real parts, with the issue's figures.

Starts PostgreSQL (a throw-away cluster), a redis-server (broker and rate limiter), a
`milvus-lite server`, the Procfile's worker and scheduler lines as they are, and the
OpenRouter-protocol server of the tests in this process with a fixed latency per call and a
sliding-window rate limit per model (429 with Retry-After and X-RateLimit-* beyond it, not
billed, as OpenRouter does). A bulk batch of --images images whose retrieval is done is
requested (bench/worker_threads.py: each image makes three calls, the style analysis, the
image and the quality check, each to its own model). When half of them are in review, a
reviewer regenerates one with feedback. It prints:

  makespan     from the request (the worker host running) to the last image in review,
               against the rate limit's bound:
               N ÷ the admitted rate + one image's chain of calls (three calls at the given
               latency). The admitted rate is in images a second, set by the busiest model:
               the limit is per model, and by default the style analyst's model also makes
               the quality check (QUALITY_CHECK_MODEL), so it carries two calls an image and
               admits half as many images a second as calls. Target: ≤ 1.2× the bound
  failed       images that failed. Target: 0
  429s         the image model's 429s as a share of its calls. Target: ≤ 10 %
  regenerate   from the reviewer's click to the new version in review, against one chain.
               Target: within 2 chains
  peaks        calls in flight at the provider, the worker's database connections
               (pg_stat_activity) and the resident memory of the worker's and the scheduler's
               processes (sampled every 0.2 s). Targets: ≤ 30 connections, ≤ 1.5 GiB

    .venv/bin/python bench/season.py --images 300 --latency 20 --rate-limit 30/10 \
        [--threads T --bulk-messages M] [--trace SECONDS]

--threads and --bulk-messages size the worker as docs/deploy.md says (the calls in flight
the limit admits, by Little's law); without them the Procfile's line runs as it is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from stack import Process, free_port, procfile_commands
from worker_threads import request_drop, sample, start_postgres, wait_done

GIB = 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--latency", type=float, default=20.0, help="seconds per provider call")
    parser.add_argument(
        "--rate-limit",
        default="30/10",
        help="the provider's limit per model, CALLS/SECONDS (a sliding window)",
    )
    parser.add_argument(
        "--threads", type=int, help="the worker's threads (default: the Procfile's line as it is)"
    )
    parser.add_argument(
        "--bulk-messages", type=int, help="GENERATION_BULK_MESSAGES (default: the setting's)"
    )
    parser.add_argument(
        "--trace",
        type=float,
        metavar="SECONDS",
        help="every SECONDS, print the images in review and each model's limit, calls in "
        "flight and 429s so far (how the limiter follows the provider)",
    )
    args = parser.parse_args()
    calls, _, seconds = args.rate_limit.partition("/")
    rate_limit = (int(calls), float(seconds))

    folder = Path(tempfile.mkdtemp(prefix="season-"))
    os.chmod(folder, 0o777)
    ports = {name: free_port() for name in ("redis", "openrouter", "postgres", "milvus", "web")}
    postgres, database_url = start_postgres(folder, ports["postgres"])
    try:
        return run(args, rate_limit, folder, ports, database_url)
    finally:
        postgres.terminate()
        postgres.wait()
        shutil.rmtree(folder, ignore_errors=True)


def run(args, rate_limit, folder: Path, ports: dict[str, int], database_url: str) -> int:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-season",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url,
        "DJANGO_MEDIA_ROOT": str(folder / "media"),
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "TASK_BROKER": "redis",
        "MILVUS_URI": f"http://127.0.0.1:{ports['milvus']}",
        "OPENROUTER_API_KEY": "test-openrouter-key",
        "OPENROUTER_BASE_URL": f"http://127.0.0.1:{ports['openrouter']}/api/v1",
        "EMBEDDER_BACKEND": "catalog.embedders.offline.OfflineEmbedder",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = "bench"
    from tests.openrouter_server import OpenRouterServer

    if args.bulk_messages:  # and no model may have more in flight than the worker holds
        env["GENERATION_BULK_MESSAGES"] = str(args.bulk_messages)
        env["OPENROUTER_CONCURRENCY_CEILING"] = str(args.bulk_messages)
    commands = procfile_commands(folder, ports)
    if args.threads:
        worker = commands["worker"]
        worker[worker.index("--threads") + 1] = str(args.threads)
    # The worker logs at INFO: its "ready for action" line starts the clock (worker_ready).
    parts = {
        name: Process(name, commands[name], folder, ports.get(name), {**env, "LOG_LEVEL": "INFO"})
        for name in ("redis", "milvus", "worker", "scheduler")
    }
    print("worker:", " ".join(commands["worker"][1:]))
    chain = 3 * args.latency
    calls_an_image = Counter(
        (settings.STYLE_ANALYST_MODEL, settings.IMAGE_GENERATOR_MODEL, settings.QUALITY_CHECK_MODEL)
    )
    busiest, busiest_calls = calls_an_image.most_common(1)[0]
    admitted = rate_limit[0] / rate_limit[1] / busiest_calls  # images a second
    bound = args.images / admitted + chain
    print(
        f"admitted: {admitted:g} images a second ({busiest} makes {busiest_calls} of each "
        f"image's calls, at {rate_limit[0] / rate_limit[1]:g} a second)"
    )
    samples: list[tuple[float, int, int, int]] = []  # time, in flight, connections, memory
    with OpenRouterServer(
        port=ports["openrouter"], latency=args.latency, rate_limit=rate_limit
    ) as provider:
        try:
            parts["redis"].start()
            parts["milvus"].start()
            call_command("migrate", verbosity=0)
            for name in ("worker", "scheduler"):
                parts[name].start()
            worker_ready(folder / "worker.log", timeout=180)
            started = time.monotonic()  # the worker host is up: the drop is requested now
            batch = request_drop(args.images)
            stop = threading.Event()
            sampler = threading.Thread(
                target=sample,
                args=(provider, [parts["worker"], parts["scheduler"]], samples, stop),
                daemon=True,
            )
            sampler.start()
            if args.trace:
                threading.Thread(
                    target=trace, args=(batch, provider, args.trace, started, stop), daemon=True
                ).start()
            regenerate_seconds = regenerate_midway(batch, args.images, timeout=bound * 3)
            done, failed = wait_done(batch, timeout=bound * 3)
            makespan = time.monotonic() - started
            stop.set()
            sampler.join()
        finally:
            for name in ("scheduler", "worker", "milvus", "redis"):
                parts[name].stop()
    image_model = settings.IMAGE_GENERATOR_MODEL
    image_calls = [
        r
        for r in provider.requests
        if r.path.endswith("/chat/completions") and r.json.get("model") == image_model
    ]
    limited = sum(hit[1] == image_model for hit in provider.rate_limited)
    share = limited / max(len(image_calls), 1)
    chats = sum(r.path.endswith("/chat/completions") for r in provider.requests)
    share_all = len(provider.rate_limited) / max(chats, 1)
    connections = max((s[2] for s in samples), default=0)
    memory = max((s[3] for s in samples), default=0)
    print(
        f"{args.images} images, {args.latency:g} s a call, {rate_limit[0]} calls per "
        f"{rate_limit[1]:g} s per model"
    )
    rows = [
        ("makespan", f"{makespan:.0f} s", f"bound {bound:.0f} s", makespan / bound, 1.2),
        ("failed", str(failed), "", None, None),
        ("in review", f"{done} of {args.images}", "", None, None),
        ("429s", f"{limited} of {len(image_calls)} image calls", f"{share:.1%}", None, None),
        (
            "429s, every model",
            f"{len(provider.rate_limited)} of {chats} calls",
            f"{share_all:.1%}",
            None,
            None,
        ),
        (
            "regenerate to review",
            f"{regenerate_seconds:.0f} s" if regenerate_seconds else "never",
            f"one chain {chain:.0f} s",
            (regenerate_seconds or float("inf")) / chain,
            2.0,
        ),
        ("calls in flight", f"peak {max((s[1] for s in samples), default=0)}", "", None, None),
        ("database connections", f"peak {connections}", "target ≤ 30", None, None),
        ("worker host memory", f"peak {memory / GIB:.2f} GiB", "target ≤ 1.5 GiB", None, None),
    ]
    for name, figure, beside, ratio, target in rows:
        verdict = ""
        if ratio is not None:
            verdict = f"{ratio:.2f}× ({'meets' if ratio <= target else 'misses'} ≤ {target}×)"
        print(f"  {name:<22}{figure:<32}{beside:<22}{verdict}")
    targets = {
        "makespan ≤ 1.2× the bound": makespan <= 1.2 * bound,
        "0 failed": failed == 0,
        "429s ≤ 10 % of image calls": share <= 0.10 and share_all <= 0.10,
        "regenerate within 2 chains": bool(regenerate_seconds) and regenerate_seconds <= 2 * chain,
        "≤ 30 database connections": connections <= 30,
        "≤ 1.5 GiB": memory <= 1.5 * GIB,
    }
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    return 0


def worker_ready(log: Path, timeout: float) -> None:
    """Waits for the worker's process to say it is ready (Dramatiq logs it once its threads
    run), so the clock does not count the worker's start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b"ready for action" in log.read_bytes():
            return
        time.sleep(0.2)
    raise SystemExit(f"the worker did not start within {timeout:.0f} s: see {log}")


def regenerate_midway(batch, images: int, timeout: float) -> float | None:
    """When half the drop is in review, a reviewer regenerates one of them with feedback;
    seconds from that click to the new version in review (None if it never got there)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from generation.models import AssetStatus, GeneratedAsset
    from generation.review import asset_regenerate

    reviewer = get_user_model().objects.create_superuser("season-reviewer", "r@example.com", "x")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        in_review = batch.assets.filter(status=AssetStatus.IN_REVIEW)
        if in_review.count() >= images // 2:
            clicked = time.monotonic()
            new = asset_regenerate(
                asset=in_review.first(), user=reviewer, feedback="a warmer, softer light"
            )
            while time.monotonic() < deadline:
                status = GeneratedAsset.objects.filter(pk=new.pk).values_list("status", flat=True)
                if status[0] == AssetStatus.IN_REVIEW:
                    return time.monotonic() - clicked
                connection.close()
                time.sleep(0.25)
            return None
        connection.close()
        time.sleep(0.5)
    return None


def trace(batch, provider, every: float, started: float, stop: threading.Event) -> None:
    """Prints, every `every` seconds, the images in review and each model's pace."""
    from django.db import connection

    from core.ratelimit import limiter_state
    from generation.models import AssetStatus

    while not stop.wait(every):
        in_review = batch.assets.filter(status=AssetStatus.IN_REVIEW).count()
        connection.close()
        models = "  ".join(
            f"{model.rsplit('/', 1)[-1][:18]}: limit {pace.limit:.1f} in flight "
            f"{pace.in_flight} 429s {pace.rate_limited}"
            + (" blocked" if pace.blocked_until else "")
            for model, pace in limiter_state().items()
        )
        print(f"{time.monotonic() - started:6.0f} s  {in_review:5} in review  {models}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
