"""The project's URLs plus a view that logs and sends a task that logs (test only)."""

import logging

import dramatiq
from django.http import HttpResponse
from django.urls import path

from config import urls as project
from core.queue import enqueue_after_commit

logger = logging.getLogger("tests.request_log")


@dramatiq.actor(queue_name="test-request-log", max_retries=0)
def log_from_task(sku: str) -> None:
    logger.warning("task line for %s", sku)


def log_and_enqueue(request):
    logger.warning("request line")
    enqueue_after_commit(log_from_task, "SKU1")
    return HttpResponse("sent")


urlpatterns = [path("test-log/", log_and_enqueue), *project.urlpatterns]
