"""Sending Dramatiq messages after the transaction commits, and what the broker still holds."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

import dramatiq
from django.db import transaction
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

logger = logging.getLogger(__name__)


def enqueue_after_commit(
    actor: dramatiq.Actor,
    *args,
    on_sent: Callable[[dramatiq.Message], None] | None = None,
    on_failed: Callable[[Exception], None] | None = None,
    delay: float | None = None,
) -> None:
    """Send a message once the current transaction commits (to be delivered `delay` seconds
    later, when given); never inside it.

    A rolled back transaction sends nothing. If the broker is down the commit still stands:
    the failure is logged (and handed to `on_failed`), and the periodic jobs send what the
    database says is still to do. `on_sent` receives the message that was sent.
    """

    def send():
        try:
            message = actor.send_with_options(
                args=args, delay=None if delay is None else int(delay * 1000)
            )
        except Exception as exc:  # noqa: BLE001 - redis down, network: the commit must stand
            logger.warning(
                "could not queue %s (%s); the periodic jobs will send it again",
                actor.actor_name,
                exc,
            )
            if on_failed is not None:
                on_failed(exc)
            return
        if on_sent is not None:
            on_sent(message)

    transaction.on_commit(send)


def retry_message(reason: str, *, delay: float | None) -> dramatiq.Retry:
    """The exception an actor raises to be delivered again after `delay` seconds (None: the
    Retries middleware's exponential backoff). See core.openrouter for the retry policy."""
    return dramatiq.Retry(reason, delay=None if delay is None else int(delay * 1000))


def pending_message_ids(queue_name: str) -> set[str] | None:
    """Ids of the messages the broker still holds for a queue: waiting, delayed for a retry,
    or being worked on (a dead worker's come back by themselves). None when it cannot tell."""
    broker = dramatiq.get_broker()
    names = (queue_name, dq_name(queue_name))
    try:
        if isinstance(broker, RedisBroker):
            encoded = [
                data
                for name in names
                for data in broker.client.hvals(f"{broker.namespace}:{name}.msgs")
            ]
        elif isinstance(broker, StubBroker):
            encoded = [
                data
                for name in names
                if name in broker.queues
                for data in list(broker.queues[name].queue)
            ]
        else:
            return None
        return {dramatiq.Message.decode(data).message_id for data in encoded}
    except Exception as exc:  # noqa: BLE001 - broker down: the caller sends again anyway
        logger.warning("cannot list the messages of %s: %s", queue_name, exc)
        return None


def worker_name() -> str:
    """Who is working: host, process and thread (claims and reservations record it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
