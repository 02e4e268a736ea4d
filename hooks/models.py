"""Webhook endpoints, the events they hear of, and every delivery and attempt to send one."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import models


class EventType(models.TextChoices):
    PRODUCT_CREATED = "product.created", "Product created"
    PRODUCT_UPDATED = "product.updated", "Product updated"
    IMPORT_FINISHED = "import.finished", "Import finished"
    BATCH_FINISHED = "batch.finished", "Batch finished"
    ASSET_IN_REVIEW = "asset.in_review", "Image in review"
    ASSET_APPROVED = "asset.approved", "Image approved"
    ASSET_REJECTED = "asset.rejected", "Image rejected"
    ASSET_PUBLISHED = "asset.published", "Image published"
    ASSET_UNPUBLISHED = "asset.unpublished", "Image unpublished"


class WebhookEndpoint(models.Model):
    """A URL that hears of the events it subscribes to, signed with its own secret.

    The secret is stored as it is (the signature needs it); it is shown once, when the
    endpoint is made, and never again in the admin.
    """

    url = models.URLField(
        "URL", max_length=500, validators=[URLValidator(schemes=["http", "https"])]
    )
    events = models.JSONField(default=list, help_text="The event types it subscribes to.")
    secret = models.CharField(max_length=100, editable=False)
    description = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_endpoints",
        help_text="Hears by mail when the endpoint is disabled after failing.",
    )
    is_active = models.BooleanField("active", default=True, db_index=True)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    failed_in_a_row = models.PositiveIntegerField(
        default=0, editable=False, help_text="Deliveries failed for good since the last success."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url", "pk"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """Something a storefront cares about happened: recorded in the transaction that did it."""

    event_type = models.CharField(max_length=32, choices=EventType.choices, db_index=True)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    # Events that must be told once (a batch finishing) carry a key; others none.
    key = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"

    def body(self) -> str:
        """The JSON every endpoint receives, the same on every attempt (it is signed)."""
        return json.dumps(
            {
                "type": self.event_type,
                "timestamp": self.created_at.isoformat(),
                "data": self.payload,
            },
            cls=DjangoJSONEncoder,
            separators=(",", ":"),
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed for good"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the source of truth of what is still to send (a message
    on the `webhooks` queue only nudges). Its message id is the webhook-id of every attempt."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(max_length=40, unique=True, editable=False)
    status = models.CharField(
        max_length=16,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Attempts since it was queued (or sent again)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(
        blank=True, help_text="The start of the last answer, or why there was none."
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField("failed for good at", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"],
                name="one_delivery_per_endpoint",
                violation_error_message="This event is already being delivered to this endpoint.",
            )
        ]

    def __str__(self) -> str:
        return self.message_id


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came back: the delivery log."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True, help_text="The start of the answer.")
    error = models.CharField(max_length=500, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.delivery} at {self.started_at:%Y-%m-%d %H:%M:%S}"
