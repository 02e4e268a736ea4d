"""Sending Dramatiq messages after the transaction commits, and asking for a later retry."""

from __future__ import annotations

import logging

import dramatiq
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_after_commit(actor: dramatiq.Actor, *args) -> None:
    """Send a message once the current transaction commits; never inside it.

    A rolled back transaction sends nothing. If the broker is down the commit still stands:
    the failure is logged and the periodic reconcile catches up later.
    """
    def send():
        try:
            actor.send(*args)
        except Exception as exc:  # noqa: BLE001 - redis down, network: the commit must stand
            logger.warning("could not queue %s (%s); the periodic reconcile will catch up",
                           actor.actor_name, exc)

    transaction.on_commit(send)


def retry_message(reason: str, *, delay: float | None) -> dramatiq.Retry:
    """The exception an actor raises to be delivered again after `delay` seconds (None: the
    Retries middleware's exponential backoff). See core.openrouter for the retry policy."""
    return dramatiq.Retry(reason, delay=None if delay is None else int(delay * 1000))
