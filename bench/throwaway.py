"""The Django set-up the benches share: the app on a throw-away folder of its own."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django(folder: Path, **env: str) -> None:
    """Django with its SQLite database, media and Milvus Lite file in `folder`, the stub task
    broker and the offline embedder, migrated. `env` adds or overrides variables."""
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only",
            "TASK_BROKER": "stub",
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "DJANGO_MEDIA_ROOT": str(folder / "media"),
            "EMBEDDER_BACKEND": "catalog.embedders.offline.OfflineEmbedder",
            "OPENROUTER_API_KEY": "",
            **env,
        }
    )
    import django

    django.setup()
    # Milvus Lite's in-process server logs a traceback for each RPC it does not implement.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    for noisy in ("faiss.loader", "milvus_lite", "dramatiq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command

    # Set here, not in the environment: pymilvus reads MILVUS_URI itself and wants a URL there.
    settings.MILVUS_URI, settings.MILVUS_TOKEN = str(folder / "milvus.db"), ""
    settings.MILVUS_WRITE_LOCK_FILE = folder / "milvus.lock"
    call_command("migrate", verbosity=0)
