"""The production topology on one machine: PostgreSQL, S3 (moto in server mode), Redis, a
milvus-lite server, two web processes under gunicorn and two worker processes, all started
from the settings' environment variables alone.

A merchandiser's flow crosses the processes: the sample is imported from the shell, generated
by the workers, approved and published through the two web hosts (logged in on one, acting on
the other); then, without a login, the published image answers at its stable URL with no
expiry, while an unpublished image and a product photo are refused.

It needs a PostgreSQL server, so it runs in the PostgreSQL pass of .ci/run (DATABASE_URL set
to postgres://...); on SQLite it is skipped, saying why.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.topology


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = 120, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            child = int(status.parent.name)
            found += [child, *_children(child)]
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stack_env(tmp_path: Path, database_url: str, redis_port: int, **extra: str) -> dict[str, str]:
    """The environment of a production-like stack on this machine: production settings (plain
    http on 127.0.0.1, what bin/setup's .env turns off too), the given database, a Redis
    broker, the offline providers, nothing inherited from the test's own settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AWS_", "MILVUS_", "OPENROUTER_", "PUBLISHED_"))
    }
    env.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "stack-" + "k" * 50,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SESSION_COOKIE_SECURE": "0",
            "DJANGO_CSRF_COOKIE_SECURE": "0",
            "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
            "DATABASE_URL": database_url,
            "TASK_BROKER": "redis",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "OPENROUTER_API_KEY": "",
            "EMBEDDER_BACKEND": "",
            "STYLE_ANALYST_BACKEND": "",
            "IMAGE_GENERATOR_BACKEND": "",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


class Stack:
    def __init__(self, folder: Path, env: dict[str, str]):
        self.folder, self.env, self.processes, self.names = folder, env, [], []

    def start(self, name: str, command: list[str], port: int | None = None) -> None:
        log = open(self.folder / f"{name}.log", "ab")
        self.names.append(name)
        self.processes.append(
            subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )
        if port:
            wait_for(lambda: listening(port), f"{name} on port {port}", timeout=60, every=0.1)

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def resident_mib(self) -> dict[str, float]:
        """Resident memory of each process of the stack (with its forked children), in MiB."""
        sizes = {}
        for name, process in zip(self.names, self.processes, strict=True):
            pids = [process.pid, *_children(process.pid)]
            sizes[name] = sum(_rss_kib(pid) for pid in pids) / 1024
        return sizes

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def topology_db():
    """A database of its own for the stack, in the PostgreSQL server the tests use."""
    import psycopg

    if connection.vendor != "postgresql":
        pytest.skip(
            "the topology test needs PostgreSQL: run it with DATABASE_URL=postgres://... "
            "(the PostgreSQL pass of .ci/run does)"
        )
    db = connection.settings_dict
    server = f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}"
    name = f"topology_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_web_and_two_worker_processes_publish_and_keep_private_files_private(
    topology_db, tmp_path
):
    import boto3
    import psycopg

    database_url = topology_db
    ports = {name: free_port() for name in ("redis", "milvus", "s3", "web1", "web2")}
    s3_url = f"http://127.0.0.1:{ports['s3']}"
    env = stack_env(
        tmp_path,
        database_url,
        ports["redis"],
        DJANGO_STATIC_MANIFEST="1",
        MILVUS_URI=f"http://127.0.0.1:{ports['milvus']}",
        AWS_STORAGE_BUCKET_NAME="promo-private",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_S3_ENDPOINT_URL=s3_url,
        AWS_S3_REGION_NAME="us-east-1",
    )
    stack = Stack(tmp_path, env)
    try:
        stack.start(
            "redis",
            [
                str(BIN / "redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(ports["redis"]),
                "--dir",
                str(tmp_path),
                "--save",
                "",
            ],
            ports["redis"],
        )
        stack.start(
            "milvus",
            [
                str(BIN / "milvus-lite"),
                "server",
                "--data-dir",
                str(tmp_path / "milvus"),
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["milvus"]),
            ],
            ports["milvus"],
        )
        stack.start(
            "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(ports["s3"])], ports["s3"]
        )
        boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket="promo-private")

        stack.manage("migrate", "--noinput")
        stack.manage("collectstatic", "--noinput")
        stack.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_superuser('boss', 'boss@example.com', 'topology-pass-1')",
        )
        for name in ("web1", "web2"):
            stack.start(
                name,
                [
                    str(BIN / "gunicorn"),
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{ports[name]}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                ],
                ports[name],
            )
        for name in ("worker1", "worker2"):
            stack.start(
                name,
                [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "2"],
            )

        sample = tmp_path / "sample"
        stack.manage("make_sample_catalog", str(sample))
        started = time.monotonic()
        stack.manage(
            "import_catalog", str(sample / "products.csv"), "--images", str(sample / "images")
        )
        stack.manage(
            "import_catalog",
            str(sample / "new_products.csv"),
            "--images",
            str(sample / "new_products"),
        )
        with psycopg.connect(database_url, autocommit=True) as db:

            def count(sql: str) -> int:
                return db.execute(sql).fetchone()[0]

            wait_for(
                lambda: (
                    count("SELECT count(*) FROM catalog_product WHERE index_state = 'synced'") == 44
                ),
                "the catalog in the index (two workers syncing)",
            )
            indexed = time.monotonic()
            stack.manage(
                "generate_promos",
                "--new",
                "--preset",
                "Marketplace main image",
                "--size",
                "0.5K",
                "--wait",
                "--timeout",
                "240",
                "--user",
                "boss",
            )
            generated = time.monotonic()
            assets = db.execute(
                "SELECT id, image FROM generation_generatedasset "
                "WHERE status = 'in_review' ORDER BY id"
            ).fetchall()
            assert len(assets) == 4
            shown, kept_private = assets[0], assets[1]
            product_photo = db.execute(
                "SELECT image FROM catalog_product ORDER BY id LIMIT 1"
            ).fetchone()[0]

            web1, web2 = (f"http://127.0.0.1:{ports[name]}" for name in ("web1", "web2"))
            staff = requests.Session()
            login = staff.get(f"{web1}/admin/login/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
            staff.post(
                f"{web1}/admin/login/",
                data={
                    "username": "boss",
                    "password": "topology-pass-1",
                    "csrfmiddlewaretoken": csrf,
                    "next": "/admin/",
                },
                headers={"Referer": f"{web1}/admin/login/"},
            )
            page = staff.get(
                f"{web2}/admin/generation/generatedasset/{shown[0]}/change/"
            )  # the other host
            assert page.status_code == 200 and "Approve" in page.text
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            for decision in ("approve", "publish"):
                staff.post(
                    f"{web2}/admin/generation/generatedasset/{shown[0]}/decide/",
                    data={"decision": decision, "csrfmiddlewaretoken": token},
                    headers={"Referer": f"{web2}/admin/"},
                )
            published = db.execute(
                "SELECT published_image FROM generation_generatedasset WHERE id = %s", [shown[0]]
            ).fetchone()[0]
            assert published.startswith("published/")
            static = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', page.text).group(
                1
            )

        # The URL the app hands to channels (its feed) is the stable one: this site's, with
        # nothing in it that expires; only the redirect it answers with is signed, afresh.
        feed = staff.get(f"{web1}/feeds/published.json")
        assert feed.status_code == 200, feed.text
        [listed] = feed.json()["images"]
        stable = listed["url"]
        assert stable == f"{web1}/published/{published.removeprefix('published/')}"
        assert urlparse(stable).query == ""
        anonymous = requests.Session()
        first = anonymous.get(stable, allow_redirects=False)
        assert first.status_code == 302 and first.headers["Cache-Control"] == "no-store"
        signed = set(parse_qs(urlparse(first.headers["Location"]).query))
        assert {"Signature", "Expires"} <= signed or {"X-Amz-Signature", "X-Amz-Expires"} <= signed
        image = anonymous.get(stable)  # the redirect leads to a fresh signed URL of the bucket
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert anonymous.get(stable.replace(web1, web2)).status_code == 200  # any host answers
        for private in (
            f"/media/{kept_private[1]}",
            f"/media/{product_photo}",
            f"/media/{published}",
        ):
            assert anonymous.get(f"{web1}{private}", allow_redirects=False).status_code == 404
        assert staff.get(f"{web2}/media/{kept_private[1]}").status_code == 200  # staff see it
        assert anonymous.get(f"{web1}{static}").status_code == 200  # WhiteNoise, hashed name
        assert anonymous.get(f"{web1}/feeds/published.json").status_code == 401
        # Figures for docs/deploy.md (shown with pytest -s).
        print(
            f"\nimport + index of 44 products: {indexed - started:.1f} s; 4 offline images: "
            f"{generated - indexed:.1f} s; resident memory (MiB): "
            + ", ".join(f"{name} {mib:.0f}" for name, mib in stack.resident_mib().items())
        )
    finally:
        stack.stop()
