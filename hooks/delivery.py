"""Sending a delivery: claim the row, sign and POST the event, record the answer, and retry
with backoff until it is delivered or has failed for good (about a day).

At least once: the row is the source of truth. A message on the `webhooks` queue only nudges
(the claim makes a duplicate nudge do nothing), and the periodic job nudges the rows whose
message was lost: a retry message gone with the broker, a worker killed mid-delivery.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import dramatiq
import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from core.queue import enqueue_after_commit
from hooks.endpoints import url_refusal
from hooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

EXCERPT = 1000  # characters of an answer kept in the log


def delivery_claim(*, delivery_id: int, worker: str) -> WebhookDelivery | None:
    """Take the delivery for one attempt when it is due (or its last sender's lease ran out)
    and its endpoint is active; None when it is not this worker's to send."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, endpoint__is_active=True)
        .filter(
            Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now)
        )
        .update(
            status=DeliveryStatus.SENDING,
            claimed_by=worker,
            claimed_until=now + timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS),
            updated_at=now,
        )
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)


def signed_headers(*, secret: str, message_id: str, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (signed at the time of sending)."""
    sent_at = timezone.now()
    return {
        "Content-Type": "application/json",
        "User-Agent": "promo-studio-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent_at, body),
    }


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    """POST the event; (status code or None, the start of the answer, the error if any).
    Redirects are never followed (a 3xx is a failure): they could lead anywhere."""
    refusal = url_refusal(delivery.endpoint.url)
    if refusal:
        return None, "", f"Refused: {refusal}"
    body = delivery.event.body()
    headers = signed_headers(
        secret=delivery.endpoint.secret, message_id=delivery.message_id, body=body
    )
    try:
        with requests.post(
            delivery.endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        ) as response:
            start = next(response.iter_content(EXCERPT * 4), b"")
            excerpt = start.decode("utf-8", "replace")[:EXCERPT]
            error = "redirects are not followed" if response.is_redirect else ""
            return response.status_code, excerpt, error
    except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, recorded and retried
        return None, "", f"{type(exc).__name__}: {exc}"[:500]


def delivery_attempt(*, delivery_id: int, worker: str) -> str | None:
    """One attempt of a delivery, recorded; returns its status after, or None when there was
    nothing to do (not due, delivered, being sent, or its endpoint disabled)."""
    delivery = delivery_claim(delivery_id=delivery_id, worker=worker)
    if delivery is None:
        return None
    started, clock = timezone.now(), time.monotonic()
    code, excerpt, error = _post(delivery)
    delivered = code is not None and 200 <= code < 300 and not error
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            started_at=started,
            duration_ms=int((time.monotonic() - clock) * 1000),
            status_code=code,
            response=excerpt,
            error=error,
            worker=worker,
        )
        attempts = delivery.attempts + 1
        fields = {
            "attempts": attempts,
            "last_status_code": code,
            "last_response": error or excerpt,
            "claimed_by": "",
            "claimed_until": None,
            "updated_at": timezone.now(),
        }
        delays = settings.WEBHOOK_RETRY_DELAYS
        if delivered:
            fields |= {"status": DeliveryStatus.DELIVERED, "delivered_at": timezone.now()}
            fields["next_attempt_at"] = None
        elif attempts > len(delays):
            fields |= {"status": DeliveryStatus.FAILED, "failed_at": timezone.now()}
            fields["next_attempt_at"] = None
        else:
            delay = delays[attempts - 1]
            fields |= {
                "status": DeliveryStatus.PENDING,
                "next_attempt_at": timezone.now() + timedelta(seconds=delay),
            }
        # Only while the claim is still ours: past the lease another worker owns the row.
        mine = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_by=worker
        ).update(**fields)
        if not mine:
            logger.warning("webhook %s: the claim ran out during the attempt", delivery.message_id)
            return None
        if delivered:
            WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(failed_in_a_row=0)
        elif fields["status"] == DeliveryStatus.FAILED:
            _failed_for_good(delivery.endpoint_id)
        else:
            delivery_nudge(delivery.pk, delay=delay)
    logger.info(
        "webhook %s to endpoint %s: attempt %s, %s",
        delivery.message_id,
        delivery.endpoint_id,
        attempts,
        code or error,
    )
    return fields["status"]


def _failed_for_good(endpoint_id: int) -> None:
    """Count a delivery that failed for good; disable the endpoint and tell its owner after
    WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES of them in a row."""
    from hooks.endpoints import endpoint_disable
    from hooks.notifications import endpoint_disabled_notify

    WebhookEndpoint.objects.filter(pk=endpoint_id).update(failed_in_a_row=F("failed_in_a_row") + 1)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES
    if endpoint.is_active and endpoint.failed_in_a_row >= limit:
        reason = f"{endpoint.failed_in_a_row} deliveries in a row failed after every retry."
        if endpoint_disable(endpoint=endpoint, reason=reason):
            transaction.on_commit(lambda: endpoint_disabled_notify(endpoint_id=endpoint_id))


def delivery_nudge(delivery_id: int, *, delay: float | None = None) -> None:
    """Send the delivery's message once the transaction commits (`delay` seconds later)."""
    # By name through the broker: hooks.tasks imports this module.
    actor = dramatiq.get_broker().get_actor("deliver_webhook")
    enqueue_after_commit(actor, delivery_id, delay=delay)


def deliveries_requeue_lost() -> int:
    """Nudge the deliveries whose message was lost: due for longer than a lease (the retry
    message should have come by then) or claimed by a worker whose lease ran out (killed
    mid-delivery). Returns how many."""
    now = timezone.now()
    late = now - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(endpoint__is_active=True)
        .filter(
            Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=late)
            | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in ids:
        delivery_nudge(delivery_id)
    return len(ids)


def deliveries_resume(*, endpoint: WebhookEndpoint) -> int:
    """Nudge what waited for an endpoint that was enabled again (its due deliveries); returns
    how many."""
    ids = list(
        WebhookDelivery.objects.filter(
            endpoint=endpoint, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("pk", flat=True)
    )
    for delivery_id in ids:
        delivery_nudge(delivery_id)
    return len(ids)


def delivery_send_again(*, delivery: WebhookDelivery) -> bool:
    """Queue a delivery anew with a fresh retry schedule (a failed one, or a delivered one a
    receiver lost). It is a new attempt of the same message, so it keeps its webhook-id: a
    receiver that already handled it may recognise it. False while it is being sent."""
    with transaction.atomic():
        changed = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status=DeliveryStatus.SENDING)
            .update(
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=timezone.now(),
                failed_at=None,
                delivered_at=None,
                updated_at=timezone.now(),
            )
        )
        if changed:
            delivery_nudge(delivery.pk)
    delivery.refresh_from_db()
    return bool(changed)
