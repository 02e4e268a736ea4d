"""Telling an endpoint's owner that it was disabled after failing (as generation.notifications
tells a requester of a rejection)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from hooks.models import WebhookEndpoint


def endpoint_disabled_notify(*, endpoint_id: int) -> bool:
    """Mail the owner that the endpoint was disabled, and how to turn it on again. False when
    there is nobody to tell (no owner, or one without an email address)."""
    endpoint = WebhookEndpoint.objects.select_related("owner").filter(pk=endpoint_id).first()
    owner = endpoint.owner if endpoint else None
    if owner is None or not owner.email:
        return False
    link = f"{settings.SITE_URL}/admin/hooks/webhookendpoint/{endpoint.pk}/change/"
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint.url}",
        message=(
            f"The studio stopped sending webhooks to {endpoint.url}.\n\n"
            f"Why: {endpoint.disabled_reason}\n\n"
            "Events still happen and wait for it: once the receiver answers again, enable the "
            f"endpoint in the admin and what waited is sent.\n\n{link}\n"
        ),
        from_email=None,
        recipient_list=[owner.email],
    )
    return True
