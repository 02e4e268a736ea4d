import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import backend, env_bool, missing_variables

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"DJANGO_DEBUG": "1"}


def test_local_defaults_need_no_variables():
    assert missing_variables(LOCAL) == []


def test_production_needs_a_secret_key_and_allowed_hosts():
    assert missing_variables({}) == ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"]


def test_half_configured_s3_names_every_missing_variable():
    env = {**LOCAL, "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}
    assert missing_variables(env) == [
        "AWS_STORAGE_BUCKET_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]


def test_milvus_token_without_uri_is_incomplete():
    assert missing_variables({**LOCAL, "MILVUS_TOKEN": "root:Milvus"}) == ["MILVUS_URI"]


@pytest.mark.parametrize(
    "env",
    [
        {"OPENROUTER_BASE_URL": "http://127.0.0.1:9999/api/v1"},
        {"IMAGE_GENERATOR_BACKEND": "generation.providers.openrouter.OpenRouterImageGenerator"},
    ],
)
def test_openrouter_selected_without_a_key_is_incomplete(env):
    assert missing_variables({**LOCAL, **env}) == ["OPENROUTER_API_KEY"]


def test_providers_are_offline_without_a_key_and_openrouter_with_one():
    assert backend("IMAGE_GENERATOR_BACKEND", {}).endswith("OfflineImageGenerator")
    assert backend("IMAGE_GENERATOR_BACKEND", {"OPENROUTER_API_KEY": "sk"}).endswith(
        "OpenRouterImageGenerator"
    )
    assert (
        backend("EMBEDDER_BACKEND", {"OPENROUTER_API_KEY": "sk", "EMBEDDER_BACKEND": "x.Y"})
        == "x.Y"
    )


def test_booleans_are_parsed_strictly():
    assert env_bool("X", environ={"X": "yes"}) is True
    assert env_bool("X", environ={"X": "0"}) is False
    with pytest.raises(ValueError, match="not a boolean"):
        env_bool("X", environ={"X": "maybe"})


def test_startup_fails_naming_every_missing_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DJANGO_"))}
    # Empty values, not absent ones, so that a developer's .env cannot fill them in.
    env.update(
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "",
            "DJANGO_ALLOWED_HOSTS": "",
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_STORAGE_BUCKET_NAME": "promo-images",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )

    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    for name in (
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert name in done.stderr


def test_check_deploy_is_clean_with_only_debug_off_a_secret_key_and_allowed_hosts(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AWS_", "PUBLISHED_"))
    }
    env.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "k3y-" + "x7Qp2vLm9Rt4Wz8Yb6Nc1Hd5Jf0Gs3Ka" * 2,
            "DJANGO_ALLOWED_HOSTS": "promo.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )

    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stderr + done.stdout
    assert "System check identified no issues (0 silenced)." in done.stdout
