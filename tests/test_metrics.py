"""/metrics: Prometheus' text format, the studio's figures as the database and the rate limiter
hold them, the web's request counts, and who may read it."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from catalog.models import IndexRun
from catalog.periodic import flush_index
from core.ratelimit import slot
from core.spending import spend_book, spend_reserve
from generation.models import AssetStatus
from tests.conftest import free_port, wait_for_port
from tests.test_dashboard import make_asset

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
ELSEWHERE = "203.0.113.9"  # an address outside METRICS_ALLOWED_IPS (documentation range)


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """Each sample by name, then by its labels (sorted pairs), parsed by the Prometheus client."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_assets_are_counted_by_status_as_the_database_holds_them(client):
    for status in (AssetStatus.IN_REVIEW, AssetStatus.IN_REVIEW, AssetStatus.FAILED):
        make_asset(status, sku=f"SKU-{status}")

    assets = scrape(client)["promo_assets"]

    assert assets[(("status", "in_review"),)] == 2
    assert assets[(("status", "failed"),)] == 1
    assert assets[(("status", "published"),)] == 0  # every status is there, none missing
    assert len(assets) == len(AssetStatus.values)


def test_provider_calls_cost_errors_429s_and_latency_per_model(client):
    spend_book(
        key="asset:1:image", kind="image", subject="asset:1", model="img",
        cost=Decimal("0.07"), price=Decimal("0.067"),
    )  # fmt: skip
    spend_book(
        key="asset:2:image", kind="image", subject="asset:2", model="img",
        cost=Decimal("0.05"), price=Decimal("0.067"), rejected_reason="no image in the answer",
    )  # fmt: skip
    with slot("img"):
        pass  # answered
    with slot("img") as taken:
        taken.limited(5)  # answered 429
    with pytest.raises(TimeoutError), slot("img"):
        raise TimeoutError("no answer")  # failed otherwise

    samples = scrape(client)

    model = (("model", "img"),)
    assert samples["promo_provider_calls_total"][(("kind", "image"), *model)] == 2
    assert samples["promo_provider_cost_usd_total"][(("kind", "image"), *model)] == pytest.approx(
        0.12
    )
    assert samples["promo_provider_rejected_answers_total"][model] == 1
    assert samples["promo_provider_requests_ok_total"][model] == 1
    assert samples["promo_provider_rate_limited_total"][model] == 1
    assert samples["promo_provider_errors_total"][model] == 1
    assert samples["promo_provider_call_seconds"][model] >= 0
    assert samples["promo_provider_calls_in_flight"][model] == 0


def test_spend_against_the_cap(client, settings):
    settings.MONTHLY_SPENDING_CAP = "10"
    spend_book(
        key="a", kind="image", subject="asset:1", model="img", cost=Decimal("2"),
        price=Decimal("2"),
    )  # fmt: skip
    spend_reserve(amount=Decimal("3"), owner="worker", subject="asset:2")

    samples = scrape(client)

    assert samples["promo_spend_month_usd"][()] == 2
    assert samples["promo_spend_reserved_usd"][()] == 3
    assert samples["promo_spend_cap_usd"][()] == 10
    assert samples["promo_spend_cap_ratio"][()] == pytest.approx(0.5)


def test_index_drift_is_the_latest_reconcile_without_error(client):
    now = timezone.now()
    IndexRun.objects.create(
        kind=IndexRun.Kind.RECONCILE, embedder="e", finished_at=now, missing=3, orphaned=1
    )
    IndexRun.objects.create(
        kind=IndexRun.Kind.RECONCILE,
        embedder="e",
        finished_at=now + timedelta(minutes=5),
        error="Milvus is down",
    )

    samples = scrape(client)

    drift = samples["promo_index_drift_rows"]
    assert (drift[(("kind", "missing"),)], drift[(("kind", "orphaned"),)]) == (3, 1)
    assert drift[(("kind", "stale"),)] == 0
    assert samples["promo_index_reconcile_failed"][()] == 1
    assert samples["promo_index_reconcile_age_seconds"][()] >= 0


def test_queue_depth_counts_the_messages_waiting_in_the_broker(client, broker):
    flush_index.send()
    flush_index.send()

    queues = scrape(client)["promo_queue_messages"]

    assert queues[(("queue", "index"), ("state", "waiting"))] == 2
    assert queues[(("queue", "generation"), ("state", "waiting"))] == 0


def test_every_part_was_read(client):
    errors = scrape(client)["promo_metrics_errors"]
    assert set(errors.values()) == {0}
    assert len(errors) == 6


def test_web_requests_are_counted_by_view_and_status(client):
    key = (("method", "GET"), ("status", "200"), ("view", "healthz"))
    before = scrape(client)["promo_http_requests_total"].get(key, 0)
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page/12345")

    samples = scrape(client)

    assert samples["promo_http_requests_total"][key] == before + 2
    unmatched = (("method", "GET"), ("status", "404"), ("view", "<unmatched>"))
    assert samples["promo_http_requests_total"][unmatched] >= 1
    latency = (("method", "GET"), ("view", "healthz"))
    assert samples["promo_http_request_duration_seconds_count"][latency] >= 2


def test_from_elsewhere_only_with_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"

    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE).status_code == 403
    wrong = {"REMOTE_ADDR": ELSEWHERE, "HTTP_AUTHORIZATION": "Bearer s3cret-metrics-tokeX"}
    assert client.get("/metrics", **wrong).status_code == 403
    right = {"REMOTE_ADDR": ELSEWHERE, "HTTP_AUTHORIZATION": "Bearer s3cret-metrics-token"}
    assert "promo_assets" in scrape(client, **right)


def test_no_token_configured_never_lets_an_empty_bearer_in(client, settings):
    settings.METRICS_TOKEN = ""
    empty = {"REMOTE_ADDR": ELSEWHERE, "HTTP_AUTHORIZATION": "Bearer "}
    assert client.get("/metrics", **empty).status_code == 403


def test_allowed_addresses_may_be_networks(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 is no longer listed


def test_gunicorns_workers_counts_are_added_up_at_each_scrape(tmp_path):
    """The Procfile's web (config/gunicorn.py): two processes, every scrape sees all requests;
    the access log has each request's id."""
    port = free_port()
    folder = tmp_path / "prometheus"
    env = {
        **os.environ,
        "DJANGO_ENV_FILE": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",  # empty: the studio's parts fail
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "config.wsgi",
        "--config", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "1", "--access-logfile", str(tmp_path / "access.log"),
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}"
        # Eight callers at once against two single-threaded processes, until both have answered
        # some (the second may still be loading Django at first).
        answers = []
        deadline = time.monotonic() + 120
        while len(list(folder.glob("counter_*.db"))) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as callers:
                answers += callers.map(lambda _: requests.get(f"{url}/healthz"), range(8))
        assert len(list(folder.glob("counter_*.db"))) == 2
        assert {answer.status_code for answer in answers} == {200}

        key = (("method", "GET"), ("status", "200"), ("view", "healthz"))
        for _ in range(4):
            text = requests.get(f"{url}/metrics").text
            families = text_string_to_metric_families(text)
            counts = {
                tuple(sorted(sample.labels.items())): sample.value
                for family in families
                for sample in family.samples
                if sample.name == "promo_http_requests_total"
            }
            assert counts[key] == len(answers)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not folder.exists()  # removed at exit
    # Each access line ends with the request id the answer carried.
    access = (tmp_path / "access.log").read_text().splitlines()
    assert '"GET /healthz HTTP/1.1" 200' in access[0]
    assert {line.rsplit(" ", 1)[1] for line in access} >= {
        a.headers["X-Request-ID"] for a in answers
    }


def run_settings(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    """`code` run after Django's start in a fresh process with `env` added."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
    )


def test_the_workers_prometheus_middleware_is_there_only_when_asked_for():
    code = (
        "import dramatiq; print(sorted(type(m).__name__ for m in dramatiq.get_broker().middleware))"
    )
    on = run_settings({"DRAMATIQ_PROMETHEUS": "1"}, code)
    off = run_settings({"DRAMATIQ_PROMETHEUS": "0"}, code)

    assert "'Prometheus'" in on.stdout, on.stderr
    assert "'Prometheus'" not in off.stdout and "'DramatiqRequestId'" in off.stdout, off.stderr


def test_a_wrong_allowed_address_stops_the_start_naming_it():
    run = run_settings({"METRICS_ALLOWED_IPS": "127.0.0.1,localhost"}, "")

    assert run.returncode != 0
    assert "METRICS_ALLOWED_IPS: 'localhost' is not an IP address or network." in run.stderr


def test_queue_depth_on_a_redis_broker_by_state(settings, limiter_redis):
    """The production broker's keys, on the limiter's real redis-server (flushed per test)."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    from core.metrics import queue_depths

    settings.REDIS_URL = limiter_redis
    broker, previous = RedisBroker(url=limiter_redis), dramatiq.get_broker()
    dramatiq.set_broker(broker)
    try:
        broker.declare_queue("bulk")

        def message():
            return dramatiq.Message(
                queue_name="bulk", actor_name="a", args=(), kwargs={}, options={}
            )

        for _ in range(3):
            broker.enqueue(message())
        broker.enqueue(message(), delay=60_000)
        consumer = broker.consume("bulk", prefetch=1, timeout=1000)
        taken = next(consumer)  # a worker has it, unacknowledged

        depths = {(queue, state): count for queue, state, count in queue_depths()}
        assert depths == {
            ("bulk", "waiting"): 2,
            ("bulk", "in_progress"): 1,
            ("bulk", "delayed"): 1,
            ("bulk", "dead"): 0,
        }

        consumer.nack(taken)  # failed for good: dead-lettered
        depths = {(queue, state): count for queue, state, count in queue_depths()}
        assert (depths[("bulk", "in_progress")], depths[("bulk", "dead")]) == (0, 1)
        consumer.close()
    finally:
        dramatiq.set_broker(previous)
        broker.close()
