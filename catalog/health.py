"""The vector index's part of /readyz (core/health.py)."""

from __future__ import annotations

import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from catalog.vector_index import client


@dataclasses.dataclass
class MilvusCheck(HealthCheck):
    """Milvus answers a listing of collections over the connection the app uses."""

    def run(self) -> None:
        try:
            client().list_collections(timeout=self.timeout.total_seconds())
        except Exception as exc:  # noqa: BLE001 - refused, timed out, lost: all "down"
            # The library logs it, with this cause: the answer says only what failed.
            raise ServiceUnavailable("did not answer") from exc
