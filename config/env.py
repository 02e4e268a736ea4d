"""Reading the environment for config/settings.py.

Settings are read from environment variables only (a `.env` file at the project root is
loaded first, without overriding the real environment). Integrations are switched on by their
variables; `missing_variables()` lists what a selected integration still lacks so that
settings can fail once, naming every missing variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}

OFFLINE_BACKENDS = {
    "EMBEDDER_BACKEND": "catalog.embedders.offline.OfflineEmbedder",
    "STYLE_ANALYST_BACKEND": "generation.providers.offline.OfflineStyleAnalyst",
    "IMAGE_GENERATOR_BACKEND": "generation.providers.offline.OfflineImageGenerator",
    "QUALITY_CHECKER_BACKEND": "generation.providers.offline.OfflineQualityChecker",
}
OPENROUTER_BACKENDS = {
    "EMBEDDER_BACKEND": "catalog.embedders.openrouter.OpenRouterEmbedder",
    "STYLE_ANALYST_BACKEND": "generation.providers.openrouter.OpenRouterStyleAnalyst",
    "IMAGE_GENERATOR_BACKEND": "generation.providers.openrouter.OpenRouterImageGenerator",
    "QUALITY_CHECKER_BACKEND": "generation.providers.openrouter.OpenRouterQualityChecker",
}


def env_str(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(name, default).strip()


def env_bool(name: str, default: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    raw = env_str(name, "1" if default else "0", environ).lower()
    if raw in TRUE_VALUES:
        return True
    if raw in FALSE_VALUES:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    raw = env_str(name, str(default), environ)
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None


def env_list(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> list[str]:
    return [item.strip() for item in env_str(name, default, environ).split(",") if item.strip()]


def backend(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The dotted path of a model provider: explicit, else OpenRouter when a key is set."""
    explicit = env_str(name, "", environ)
    if explicit:
        return explicit
    if env_str("OPENROUTER_API_KEY", "", environ):
        return OPENROUTER_BACKENDS[name]
    return OFFLINE_BACKENDS[name]


def missing_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every variable that a selected integration needs but the environment lacks.

    An integration counts as selected as soon as any of its variables is set, so a half
    configured S3 or Milvus is reported instead of silently falling back to the local default.
    """
    environ = os.environ if environ is None else environ

    def has(name: str) -> bool:
        return bool(env_str(name, "", environ))

    missing: list[str] = []

    def require(*names: str) -> None:
        missing.extend(name for name in names if not has(name) and name not in missing)

    if not env_bool("DJANGO_DEBUG", False, environ):
        require("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")

    if has("MILVUS_TOKEN"):
        require("MILVUS_URI")

    s3_vars = (
        "AWS_STORAGE_BUCKET_NAME",
        "AWS_S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_S3_REGION_NAME",
    )
    if any(has(name) for name in s3_vars):
        require("AWS_STORAGE_BUCKET_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

    openrouter_selected = has("OPENROUTER_BASE_URL") or any(
        ".openrouter" in env_str(name, "", environ).lower()
        or "OpenRouter" in env_str(name, "", environ)
        for name in OPENROUTER_BACKENDS
    )
    if openrouter_selected:
        require("OPENROUTER_API_KEY")
    return missing
