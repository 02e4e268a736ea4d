"""Losing Redis's data loses no work (docs/operations.md, "What is lost with Redis"): a message
Redis held is gone, and the database, which still says the asset is to be made, has the
periodic sweeper send it again.

Real parts: a redis-server as the generation actors' broker (tests/test_reliability.py's
fixtures), stopped and started again with nothing kept, as with a lost disk.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from core.queue import pending_message_ids
from generation.models import AssetStatus, GeneratedAsset
from generation.services import assets_requeue_lost
from generation.tasks import generate_asset_now
from tests import test_reliability
from tests.conftest import wait_for_port

redis_server = test_reliability.redis_server
redis_broker = test_reliability.redis_broker


@pytest.mark.django_db
def test_an_asset_whose_queued_message_redis_lost_is_sent_again_by_the_sweeper(
    redis_broker, settings, django_capture_on_commit_callbacks
):
    _, state = redis_broker
    settings.GENERATION_REQUEUE_AFTER_SECONDS = 0
    queue = generate_asset_now.queue_name
    with django_capture_on_commit_callbacks(execute=True):
        [asset] = test_reliability.ready_assets()
    lost = GeneratedAsset.objects.get(pk=asset.pk).message_id
    assert lost in pending_message_ids(queue)

    state["server"].terminate()  # no append-only file, no snapshot: it comes back empty
    state["server"].wait()
    state["server"] = subprocess.Popen(state["command"], stdout=subprocess.DEVNULL)
    wait_for_port(state["port"])
    assert pending_message_ids(queue) == set()

    time.sleep(0.01)  # updated_at strictly before the sweep
    with django_capture_on_commit_callbacks(execute=True):
        assert assets_requeue_lost() == 1

    asset.refresh_from_db()
    assert asset.status == AssetStatus.QUEUED
    assert asset.message_id != lost and asset.message_id in pending_message_ids(queue)
