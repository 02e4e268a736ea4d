"""The one settings module. Every production part is switched by environment variables.

See .env.example for the list. Without any variables the site runs on its embedded defaults:
SQLite and media under var/, a local `milvus-lite server`, a local redis-server for Dramatiq,
and offline model providers.
"""

import os
import tempfile
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from config.env import backend, env_bool, env_int, env_list, env_str, missing_variables

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
# The real environment wins over the .env file; DJANGO_ENV_FILE names another file ("" for none).
_env_file = os.environ.get("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file:
    load_dotenv(_env_file, override=False)

_missing = missing_variables()
if _missing:
    raise ImproperlyConfigured(
        "Incomplete configuration: set "
        + ", ".join(_missing)
        + " (see .env.example for what each variable means)."
    )

DEBUG = env_bool("DJANGO_DEBUG", False)  # a development mode, only when asked for
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or "django-insecure-local-development-only"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- HTTPS: on by default without DEBUG; each can be turned off for plain http on 127.0.0.1 ---
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
# Load balancers probe /healthz and /readyz, and Prometheus scrapes /metrics, over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Behind a proxy that ends TLS: the header it sets, e.g. "HTTP_X_FORWARDED_PROTO,https".
_proxy_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if len(_proxy_header) == 2 else None

INSTALLED_APPS = [
    "config.apps.StudioAdminConfig",  # django.contrib.admin, its home page the dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dramatiq",  # before our apps, so their tasks modules are discovered
    "dramatiq_crontab",
    "ninja",  # the API docs' Swagger UI from its own static files, not from a CDN
    "core",
    "catalog",
    "generation",
    "performance",  # channel figures per published image (staff only), imported from CSV
    "hooks",  # outgoing webhooks: endpoints, events, deliveries
    "demo",  # the sample catalog and setup_demo; the apps above never import it
    "axes",  # login lockout: failed attempts in the database, its pages in the admin
    "csp",
]

MIDDLEWARE = [
    # First: every answer, a redirect or a refusal too, carries its request id and is counted.
    "core.request_log.RequestIdMiddleware",
    "core.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, hashed names, from the app
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every page (CONTENT_SECURITY_POLICY)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.input_guard",  # a 400 for NUL, a selection that is no id (core/middleware.py)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Axes wants to be last: it turns a login refused by the lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
# A form refused for a missing or stale CSRF token gets a page that says what to do.
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: SQLite under var/ unless DATABASE_URL names PostgreSQL -----------------------
# On PostgreSQL each process shares a pool of at most DATABASE_POOL_MAX_SIZE connections between
# its threads (0: no pool, a connection per thread kept DATABASE_CONN_MAX_AGE seconds). A worker
# runs dozens of threads that mostly wait for the provider holding no connection; the pool
# bounds what the few at the database hold, and a thread that finds it full waits for one.
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 24)
_POOLED = DATABASE_POOL_MAX_SIZE > 0 and DATABASE_URL.startswith(("postgres", "postgresql"))
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=0 if _POOLED else env_int("DATABASE_CONN_MAX_AGE", 60),  # the pool keeps them
        conn_health_checks=True,  # pooled: checked before each lending
    )
}
if _POOLED:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 60,  # seconds a thread waits for a connection before it fails
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web and worker write concurrently: wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Tests run a live server and a worker in threads: an in-memory database shared between
    # threads fails with "table is locked", a file waits for its lock like production does.
    # One file per test process, so two test runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"promo-test-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- logins: lockout after repeated failures (django-axes, core/lockout.py) -------------------
# Five failures for one username from one address lock that pair: enough for a person who
# mistypes or tries an old password, far too few to guess one. An address gets twenty over
# all usernames: an office behind one NAT address can have a few people mistyping at once,
# while a guesser who walks through usernames is stopped. Either lifts
# LOGIN_COOLOFF_MINUTES after the last failure, or when an administrator deletes the attempts.
# A success does not wipe earlier failures (axes would wipe the address's count too).
LOGIN_FAILURES_PER_USER = env_int("LOGIN_FAILURES_PER_USER", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
# Behind a reverse proxy, the header holding the client's address (HTTP_X_FORWARDED_FOR) and
# how many proxies of ours append to it; unset, REMOTE_ADDR (core/addresses.py, docs/deploy.md).
LOGIN_CLIENT_IP_HEADER = env_str("LOGIN_CLIENT_IP_HEADER")
LOGIN_TRUSTED_PROXIES = max(1, env_int("LOGIN_TRUSTED_PROXIES", 1))
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login unchecked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURES_PER_USER
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_HANDLER = "core.lockout.LockoutHandler"
AXES_USERNAME_CALLABLE = "core.lockout.attempt_username"  # cut to what the database can store
AXES_LOCKOUT_CALLABLE = "config.errors.locked_out"
AXES_CLIENT_IP_CALLABLE = "core.addresses.client_address"
AXES_RESET_ON_SUCCESS = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # each failure as a row too, with its time (1,000 per user)
# The log lines name the username and the address (axes masks them by default): the people on
# call need both to tell a forgotten password from a guesser. Passwords are never logged.
AXES_SENSITIVE_PARAMETERS: list[str] = []
# Its pages are registered by core/admin.py, with its "Clean up expired attempts" action fixed.
AXES_ENABLE_ADMIN = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT") or VAR_DIR / "static")

# --- files: local media under var/media, or S3 through django-storages ---------------------
# Every stored file is private: product photos and unpublished images are served only to
# staff by an authenticated view (generation.media); published images by stable public URLs of
# the app (/published/...), which stop answering when an image is unpublished.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names, compressed copies; `collectstatic` fills STATIC_ROOT (bin/run does it).
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("DJANGO_STATIC_MANIFEST", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
if env_str("AWS_STORAGE_BUCKET_NAME"):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "access_key": env_str("AWS_ACCESS_KEY_ID"),
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "addressing_style": "path" if env_str("AWS_S3_ENDPOINT_URL") else None,
            # Content-addressed names: an existing key already holds the same bytes.
            "file_overwrite": False,
            # Private: every URL is signed and short-lived (the media view redirects to one).
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 300),
            "default_acl": None,
        },
    }

# Published images answer at stable URLs of this site (/published/...). Set this to serve them
# from a CDN or a public bucket instead (e.g. https://cdn.example.com): the feed then lists
# PUBLISHED_BASE_URL/<name> (docs/deploy.md says what the bucket and CDN need).
PUBLISHED_BASE_URL = env_str("PUBLISHED_BASE_URL").rstrip("/")


# --- Content-Security-Policy (django-csp) on every response -----------------------------------
# Scripts only from our own static files: no inline script, no eval, so markup injected into a
# page cannot run. Stylesheets only from our own files too; style *attributes* are allowed
# (style-src-attr): the admin's templates and ours size thumbnails and hide notes with them,
# and an attribute can neither run script nor load anything. Images may also come from where
# the stored files live (S3 answers the media view's redirects) and from PUBLISHED_BASE_URL.
# Browsers report what it blocks to /csp-report/, which logs it.


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _storage_image_origins() -> list[str]:
    bucket = env_str("AWS_STORAGE_BUCKET_NAME")
    origins = [_origin(PUBLISHED_BASE_URL)]
    if bucket:
        endpoint = env_str("AWS_S3_ENDPOINT_URL")
        region = env_str("AWS_S3_REGION_NAME")
        if endpoint:
            origins.append(_origin(endpoint))  # path-style: the endpoint's own origin
        else:  # virtual-hosted style, with and without the region in the host name
            origins.append(f"https://{bucket}.s3.amazonaws.com")
            if region:
                origins.append(f"https://{bucket}.s3.{region}.amazonaws.com")
    return [origin for origin in origins if origin]


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", *_storage_image_origins()],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": "/csp-report/",  # each report a log line (core/csp_reports.py)
    },
}

# --- Milvus: a local `milvus-lite server`, Milvus standalone/distributed or Zilliz Cloud ------
MILVUS_URI = env_str("MILVUS_URI") or "http://127.0.0.1:19530"
MILVUS_TOKEN = env_str("MILVUS_TOKEN")
MILVUS_TIMEOUT = env_int("MILVUS_TIMEOUT", 10)  # seconds per call; a down server fails fast
# Collections are named "<prefix>_<embedder>_<build>"; the app reads and writes "<prefix>_<embedder>".
MILVUS_COLLECTION_PREFIX = env_str("MILVUS_COLLECTION_PREFIX") or "products"
# Milvus Lite takes one writer per collection, so writers queue on a lock (in Redis, or in
# this file without a Redis broker); a Milvus server takes concurrent writes and needs none.
MILVUS_SINGLE_WRITER = env_bool(
    "MILVUS_SINGLE_WRITER",
    MILVUS_URI.endswith(".db") or urlparse(MILVUS_URI).hostname in ("127.0.0.1", "localhost"),
)
MILVUS_WRITE_LOCK_FILE = VAR_DIR / "milvus-write.lock"
# Dense index: HNSW for real catalogs; FLAT (exact) is as good below a few thousand rows.
MILVUS_DENSE_INDEX = env_str("MILVUS_DENSE_INDEX") or "HNSW"
INDEX_RECONCILE_INTERVAL_SECONDS = env_int("INDEX_RECONCILE_INTERVAL_SECONDS", 300)
# A sync of this many products flushes at once; smaller ones are flushed together by a job
# running every INDEX_FLUSH_INTERVAL_SECONDS (Milvus Lite scans unflushed rows by brute force).
INDEX_FLUSH_MIN_ROWS = env_int("INDEX_FLUSH_MIN_ROWS", 64)
INDEX_FLUSH_INTERVAL_SECONDS = env_int("INDEX_FLUSH_INTERVAL_SECONDS", 10)
# The index status page waits this long for Milvus' own figures (row count); a Milvus busy
# with a sync's writes answers later, and the page shows the last figures read, with their age.
INDEX_STATUS_MILVUS_WAIT_MS = env_int("INDEX_STATUS_MILVUS_WAIT_MS", 1000)

# --- Dramatiq: a Redis broker (the local redis-server by default) ---------------------------
REDIS_URL = env_str("REDIS_URL") or "redis://127.0.0.1:6379/0"
_TASK_BROKER = env_str("TASK_BROKER") or "redis"  # "stub" runs tasks in-process (tests)
if _TASK_BROKER not in {"redis", "stub"}:
    raise ImproperlyConfigured(f"TASK_BROKER={_TASK_BROKER!r}: use redis or stub.")
DRAMATIQ_BROKER = {
    "BROKER": (
        "dramatiq.brokers.stub.StubBroker"
        if _TASK_BROKER == "stub"
        else "dramatiq.brokers.redis.RedisBroker"
    ),
    # A dead worker's unacknowledged messages come back once its heartbeat is older than
    # heartbeat_timeout, at the broker's next maintenance pass; a pass runs on
    # maintenance_chance of every million broker commands (Dramatiq's defaults, 60 s and 0.1 %,
    # left them waiting 11 minutes here; bench/faults.py measures these).
    "OPTIONS": {}
    if _TASK_BROKER == "stub"
    else {
        "url": REDIS_URL,
        "heartbeat_timeout": env_int("DRAMATIQ_HEARTBEAT_TIMEOUT_MS", 20_000),
        "maintenance_chance": env_int("DRAMATIQ_MAINTENANCE_CHANCE", 200_000),
    },
    # This list replaces Dramatiq's defaults, so every default is named here.
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.ShutdownNotifications",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Pipelines",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        # The request id of the web request that sent a message, in the task's log lines.
        "core.request_log.DramatiqRequestId",
    ]
    # The workers' own metrics (messages, errors, durations per actor) on their own port:
    # dramatiq_prom_host / dramatiq_prom_port (9191), read from the environment by Dramatiq.
    + (["dramatiq.middleware.prometheus.Prometheus"] if env_bool("DRAMATIQ_PROMETHEUS") else []),
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
# The periodic jobs (reconcile, sweepers, purge) are scheduled by dramatiq-crontab's `crontab`
# command; its Redis lock lets only one scheduler run, however many are started.
DRAMATIQ_CRONTAB = {"REDIS_URL": REDIS_URL if _TASK_BROKER == "redis" else None}

# --- model providers: offline by default, OpenRouter when OPENROUTER_API_KEY is set ----------
OPENROUTER_API_KEY = env_str("OPENROUTER_API_KEY")
OPENROUTER_BASE_URL = env_str("OPENROUTER_BASE_URL") or "https://openrouter.ai/api/v1"
OPENROUTER_SITE_URL = env_str("OPENROUTER_SITE_URL") or "http://127.0.0.1:8000"
OPENROUTER_APP_TITLE = env_str("OPENROUTER_APP_TITLE") or "Bestseller promo studio"
# Who retries what, and how the waits add up: the docstring of core/openrouter.py.
OPENROUTER_TIMEOUT = env_int("OPENROUTER_TIMEOUT", 150)  # seconds per HTTP call
OPENROUTER_MAX_RETRY_AFTER = env_int("OPENROUTER_MAX_RETRY_AFTER", 60)  # longest wait honoured
# Calls in flight per model follow what the provider admits (core/ratelimit.py): they start at
# OPENROUTER_CONCURRENCY_START, grow with successes, are multiplied by
# OPENROUTER_CONCURRENCY_DECREASE at a 429 and never pass the model's ceiling (the default, or
# "model=calls" pairs in OPENROUTER_CONCURRENCY_CEILINGS). The slots live in Redis, shared by
# every worker: the broker's Redis unless OPENROUTER_LIMITER_URL names another (with the stub
# broker and no URL, calls are not paced). The start is generous: a 429 is not billed and
# teaches the limiter the provider's window (X-RateLimit-*), while a cautious start costs a
# drop a round of calls (20 s for an image) for every doubling on the way up.
OPENROUTER_LIMITER_URL = env_str("OPENROUTER_LIMITER_URL") or (
    REDIS_URL if _TASK_BROKER == "redis" else ""
)
OPENROUTER_CONCURRENCY_START = env_int("OPENROUTER_CONCURRENCY_START", 16)
OPENROUTER_CONCURRENCY_CEILING = env_int("OPENROUTER_CONCURRENCY_CEILING", 64)
OPENROUTER_CONCURRENCY_CEILINGS = {
    model.strip(): int(calls)
    for model, _, calls in (
        pair.rpartition("=") for pair in env_list("OPENROUTER_CONCURRENCY_CEILINGS")
    )
}
OPENROUTER_CONCURRENCY_DECREASE = float(env_str("OPENROUTER_CONCURRENCY_DECREASE") or "0.5")
if not 0 < OPENROUTER_CONCURRENCY_DECREASE < 1:
    raise ImproperlyConfigured("OPENROUTER_CONCURRENCY_DECREASE must be between 0 and 1.")
# A slot held by a worker killed mid-call frees itself this long after its last renewal.
OPENROUTER_SLOT_TTL_SECONDS = env_int("OPENROUTER_SLOT_TTL_SECONDS", 30)
# The longest a generation message waits for slots, all its calls together (in its thread,
# without a database connection); then it is sent again for later, no attempt counted.
OPENROUTER_RATE_WAIT_SECONDS = env_int("OPENROUTER_RATE_WAIT_SECONDS", 90)
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL") or "nvidia/llama-nemotron-embed-vl-1b-v2"
EMBEDDING_DIMENSION = env_int("EMBEDDING_DIMENSION", 2048)
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 8)
# Worst case reserved per embedded image before a call (USD; a ":free" model reserves 0).
EMBEDDING_PRICE_PER_IMAGE = env_str("EMBEDDING_PRICE_PER_IMAGE") or "0.0002"
EMBEDDER_BACKEND = backend("EMBEDDER_BACKEND")
STYLE_ANALYST_BACKEND = backend("STYLE_ANALYST_BACKEND")
IMAGE_GENERATOR_BACKEND = backend("IMAGE_GENERATOR_BACKEND")
QUALITY_CHECKER_BACKEND = backend("QUALITY_CHECKER_BACKEND")
STYLE_ANALYST_MODEL = env_str("STYLE_ANALYST_MODEL") or "qwen/qwen3.5-397b-a17b"
# The vision model that checks each generated image before review (the analyst's by default).
QUALITY_CHECK_MODEL = env_str("QUALITY_CHECK_MODEL") or STYLE_ANALYST_MODEL
# The preview model has a published shutdown date; its successor is google/gemini-3.1-flash-image.
IMAGE_GENERATOR_MODEL = env_str("IMAGE_GENERATOR_MODEL") or "google/gemini-3.1-flash-image-preview"

# --- promo generation ---------------------------------------------------------------------
# USD per output image by size tier when a response carries no usage.cost (the seed's prices).
IMAGE_PRICE_TABLE = {"0.5K": "0.045", "1K": "0.067", "2K": "0.101", "4K": "0.151"}
# USD per image sent to the image model (the flat-lay, each reference, a staged scene): about
# 1,100 input tokens each at Nano Banana 2's input price. Counted in estimates and reservations.
IMAGE_INPUT_PRICE_PER_IMAGE = env_str("IMAGE_INPUT_PRICE_PER_IMAGE") or "0.0006"
# Worst case reserved for one style analysis call before it is made.
STYLE_ANALYSIS_PRICE_ESTIMATE = env_str("STYLE_ANALYSIS_PRICE_ESTIMATE") or "0.005"
# Worst case reserved for one quality check call (two images in, a short JSON answer out).
QA_PRICE_ESTIMATE = env_str("QA_PRICE_ESTIMATE") or "0.004"
# A quality check whose answer is not valid JSON of the schema is asked again, this many calls
# in all; then the image goes to review marked "could not check", with the answer's text.
QA_MAX_CALLS = env_int("QA_MAX_CALLS", 2)
# Optional: no paid call starts once this month's spending would pass it (USD; empty = no cap).
MONTHLY_SPENDING_CAP = env_str("MONTHLY_SPENDING_CAP") or None
# Reference bestsellers per image: the image model takes 14 input images, one is the flat-lay.
GENERATION_MAX_REFERENCES = 13
GENERATION_DEFAULT_REFERENCES = 3
# Of an image's references, at most this many may be proven promo images (the channel preset's
# own published images whose CTR beat its average), always leaving one for a bestseller photo.
GENERATION_PROVEN_REFERENCES = env_int("GENERATION_PROVEN_REFERENCES", 2)
# An image is "proven" with at least this many impressions on its preset and the lower end of
# its CTR's 95 % Wilson interval above the preset's average CTR (its other images pooled).
PERFORMANCE_PROVEN_MIN_IMPRESSIONS = env_int("PERFORMANCE_PROVEN_MIN_IMPRESSIONS", 1000)
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 5)
# An image whose bestsellers cannot be searched (Milvus down, the index missing or being
# filled) waits this long, looking again every minute and counting no attempt, then fails
# with why (it can be regenerated). The index reconcile refills a lost collection meanwhile.
GENERATION_INDEX_WAIT_SECONDS = env_int("GENERATION_INDEX_WAIT_SECONDS", 3600)
GENERATION_TIME_LIMIT_SECONDS = env_int("GENERATION_TIME_LIMIT_SECONDS", 900)  # the actor's
# A worker's claim on an asset lasts this long and is renewed while it works; a dead worker's
# claim ends with it. The sweeper sends an asset again when it has had no live claim, no
# pending message and no change for GENERATION_REQUEUE_AFTER_SECONDS.
GENERATION_CLAIM_LEASE_SECONDS = env_int("GENERATION_CLAIM_LEASE_SECONDS", 45)
GENERATION_REQUEUE_AFTER_SECONDS = env_int("GENERATION_REQUEUE_AFTER_SECONDS", 60)
# A call in flight is over on our side after this long (answered, failed or its worker dead);
# an unbooked reservation past it waits for the spending reconcile (core/reconcile.py).
SPENDING_RESERVATION_SECONDS = (
    env_int("SPENDING_RESERVATION_SECONDS", 0)
    or OPENROUTER_TIMEOUT + OPENROUTER_RATE_WAIT_SECONDS + 60
)
# A call that may have been billed unseen has certainly ended at the provider this long after it
# started; the reconcile then settles its reservation and books what the key's usage shows.
SPENDING_SETTLE_AFTER_SECONDS = env_int("SPENDING_SETTLE_AFTER_SECONDS", 0) or max(
    600, SPENDING_RESERVATION_SECONDS
)
# How often the scheduler sends the reconcile of the ledger with the provider's account.
SPENDING_RECONCILE_INTERVAL_SECONDS = env_int("SPENDING_RECONCILE_INTERVAL_SECONDS", 300)
# Timeouts that add up (the retry policy is the docstring of core/openrouter.py): one asset's
# message makes at most GENERATION_CALLS_PER_MESSAGE calls (analysis, scene, image and the
# quality check's calls), each waiting at most OPENROUTER_TIMEOUT, and waits at most
# OPENROUTER_RATE_WAIT_SECONDS in all for the rate limit.
GENERATION_CALLS_PER_MESSAGE = 3 + QA_MAX_CALLS
if (
    GENERATION_CALLS_PER_MESSAGE * OPENROUTER_TIMEOUT + OPENROUTER_RATE_WAIT_SECONDS + 30
    >= GENERATION_TIME_LIMIT_SECONDS
):
    raise ImproperlyConfigured(
        f"{GENERATION_CALLS_PER_MESSAGE} × OPENROUTER_TIMEOUT ({OPENROUTER_TIMEOUT} s) + "
        f"OPENROUTER_RATE_WAIT_SECONDS ({OPENROUTER_RATE_WAIT_SECONDS} s) + 30 s must "
        f"stay below GENERATION_TIME_LIMIT_SECONDS ({GENERATION_TIME_LIMIT_SECONDS} s): one image "
        f"makes up to {GENERATION_CALLS_PER_MESSAGE} provider calls (analysis, scene, image, "
        f"{QA_MAX_CALLS} quality checks) and waits for the rate limit. Lower OPENROUTER_TIMEOUT, "
        "OPENROUTER_RATE_WAIT_SECONDS or QA_MAX_CALLS, or raise GENERATION_TIME_LIMIT_SECONDS."
    )
# Interactive first: a reviewer's regeneration and a request of at most
# GENERATION_INTERACTIVE_MAX_ASSETS images (one image and its variants) go to a queue of their
# own, sent at once. A bulk batch's assets wait in the database; the dispatcher keeps at most
# GENERATION_BULK_MESSAGES of them in the workers' hands, shared round-robin between batches.
# Size the workers' threads above it, so interactive messages always find a free thread
# (generation/services.py).
GENERATION_INTERACTIVE_MAX_ASSETS = env_int("GENERATION_INTERACTIVE_MAX_ASSETS", 4)
GENERATION_BULK_MESSAGES = env_int("GENERATION_BULK_MESSAGES", 64)
# Offline previews (composites made without a generative model) may be published only when
# this is on; their metadata says what they are either way.
PUBLISH_OFFLINE_PREVIEWS = env_bool("PUBLISH_OFFLINE_PREVIEWS", False)
# Four-eyes rule: nobody approves an image from a batch they requested.
REVIEW_FOUR_EYES = env_bool("REVIEW_FOUR_EYES", False)
# Mail: rejections reach the batch's requester. The console backend prints them (development);
# production names an SMTP server.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "promo-studio@localhost"
# The site's address in mails (links to the admin).
SITE_URL = (env_str("SITE_URL") or "http://127.0.0.1:8000").rstrip("/")
# --- Outgoing webhooks (hooks app) ------------------------------------------------------------
# Endpoints on private, loopback or link-local addresses are refused (SSRF) unless this is on;
# on by default in DEBUG (a receiver on 127.0.0.1 while developing).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", DEBUG)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Seconds to wait before each retry of a failed delivery: about a day in all, then it has
# failed for good (comma-separated to override).
WEBHOOK_RETRY_DELAYS = [
    int(s)
    for s in env_list("WEBHOOK_RETRY_DELAYS", "5,30,120,600,1800,3600,7200,14400,28800,28800")
]
# An endpoint is disabled (and its owner mailed) after this many deliveries in a row failed for
# good, i.e. about this many days without a single answered webhook.
WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES = env_int("WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES", 3)
# A delivery being sent belongs to its worker for this long; after it, a dead worker's delivery
# is sent again by the periodic job, as is one whose retry message is this late.
WEBHOOK_CLAIM_LEASE_SECONDS = env_int("WEBHOOK_CLAIM_LEASE_SECONDS", 60)

# Deprecated (feed tokens are made in the admin now, generation.FeedToken): tokens that may
# still read /feeds/published.* without a login (comma-separated; empty = none).
FEED_TOKENS = env_list("FEED_TOKENS")

# --- the REST API under /api/v1/ (config.api) ----------------------------------------------
# Calls per token and minute; past it a 429 with Retry-After. Counted in the "api" cache.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
# Calls with an unknown or revoked token per address and minute; past it the address gets 429
# for the rest of the minute, whatever token it sends (a client looping on a revoked token, or
# somebody guessing). The address as for the login lockout (LOGIN_CLIENT_IP_HEADER).
API_FAILED_AUTH_PER_MINUTE = env_int("API_FAILED_AUTH_PER_MINUTE", 30)
# Larger bodies are refused with 413 before they are read. Django reads no body over
# DATA_UPLOAD_MAX_MEMORY_SIZE, so that limit follows this one.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2_621_440)
API_PAGE_SIZE_MAX = 500  # products per page of a list, at most
API_BULK_MAX_ITEMS = 1000  # products per bulk call, at most
# The rate counts are shared by every process through Redis when the broker is Redis.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if _TASK_BROKER == "redis"
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api"}
    ),
}

# --- catalog -------------------------------------------------------------------------------
# A product sells "like a bestseller" above this many sales (the seed's filter: > 1500).
CATALOG_BESTSELLER_MIN_SALES = env_int("CATALOG_BESTSELLER_MIN_SALES", 1500)
RETRIEVAL_TOP_K = env_int("RETRIEVAL_TOP_K", 3)
RETRIEVAL_RRF_K = 60
RETRIEVAL_CANDIDATES = 20  # per leg, before RRF fusion (the seed's limit)
# A new product's text query carries the colour word of its photo (bench/retrieval_quality.py
# turns it off to measure what the photo alone finds).
RETRIEVAL_COLOUR_WORDS = True
# An import that changes at least this share of the catalog refits the TF-IDF vocabulary.
SPARSE_REFIT_CHANGED_SHARE = 0.2
CATALOG_THUMBNAIL_SIZE = 160
CATALOG_IMAGE_MAX_PIXELS = env_int("CATALOG_IMAGE_MAX_PIXELS", 40_000_000)
CATALOG_IMAGE_MAX_BYTES = env_int("CATALOG_IMAGE_MAX_BYTES", 25 * 1024 * 1024)
CATALOG_IMPORT_MAX_CSV_BYTES = env_int("CATALOG_IMPORT_MAX_CSV_BYTES", 20 * 1024 * 1024)
CATALOG_IMPORT_MAX_ZIP_BYTES = env_int("CATALOG_IMPORT_MAX_ZIP_BYTES", 1024 * 1024 * 1024)
# An import of this many rows or more embeds its photos (local embedder) in a pool of this many
# processes; a smaller one embeds in its own process (starting a process costs about a second).
CATALOG_IMPORT_POOL_MIN_ROWS = env_int("CATALOG_IMPORT_POOL_MIN_ROWS", 1000)
CATALOG_IMPORT_PROCESSES = env_int("CATALOG_IMPORT_PROCESSES", os.cpu_count() or 1)
# The import page's JavaScript sends each file in slices of this many bytes, each its own
# request (catalog.upload_slices), so no request carries more than one slice.
CATALOG_IMPORT_SLICE_BYTES = env_int("CATALOG_IMPORT_SLICE_BYTES", 8 * 1024 * 1024)
# A CSV of at most this many rows is checked in the upload's request (its preview at once);
# larger ones by a worker, the page following.
CATALOG_IMPORT_INLINE_ROWS = env_int("CATALOG_IMPORT_INLINE_ROWS", 100)
# An import job writes this many rows per transaction (a checkpoint each; short write locks).
CATALOG_IMPORT_CHUNK_ROWS = env_int("CATALOG_IMPORT_CHUNK_ROWS", 500)
# On SQLite it then leaves the write lock free this long: a waiting writer (a login, a decision)
# polls for it at least every 100 ms, so it gets its turn after one chunk, not after several.
CATALOG_IMPORT_CHUNK_PAUSE_MS = env_int(
    "CATALOG_IMPORT_CHUNK_PAUSE_MS",
    120 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 0,
)
# The requester is mailed when an import step they wait for took at least this long.
CATALOG_IMPORT_NOTIFY_SECONDS = env_int("CATALOG_IMPORT_NOTIFY_SECONDS", 30)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Oversized uploads are refused while they arrive, before anything is stored (catalog.uploads).
FILE_UPLOAD_HANDLERS = [
    "catalog.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- health and metrics (core/health.py, core/metrics.py) ----------------------------------
# /readyz gives each part (database, Redis, Milvus, storage) this long to answer.
READYZ_TIMEOUT_SECONDS = env_int("READYZ_TIMEOUT_SECONDS", 3)
# /metrics answers these addresses (or networks, e.g. 10.0.0.0/8) without a token, and anyone
# who sends "Authorization: Bearer <METRICS_TOKEN>".
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
METRICS_TOKEN = env_str("METRICS_TOKEN")
for _entry in METRICS_ALLOWED_IPS:
    try:
        ip_network(_entry, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS: {_entry!r} is not an IP address or network."
        ) from None

# Logs: plain text for a terminal, or LOG_FORMAT=json (one object a line) for a log collector;
# either way each line carries the request id of its request or task (core/request_log.py).
LOG_FORMAT = env_str("LOG_FORMAT") or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.request_log.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {"()": "core.request_log.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    # The scheduler logs every run of every job (the lock's renewal every 5 s): failures only.
    # axes logs every login at INFO ("Cleaned up 0 expired access attempts"); its failures and
    # lockouts are WARNING lines and stay.
    "loggers": {"apscheduler": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
