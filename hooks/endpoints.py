"""Registering webhook endpoints: their signing secret, and which URLs may receive webhooks."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hooks.models import EventType, WebhookEndpoint


class EndpointRefused(ValueError):
    """The URL or the events cannot be registered; the message says why."""


def secret_generate() -> str:
    """A Standard Webhooks signing secret: `whsec_` and the base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def url_refusal(url: str) -> str | None:
    """Why webhooks may not be sent to `url`, or None when they may.

    Only http and https, and (unless WEBHOOK_ALLOW_PRIVATE_URLS) only hosts whose every
    address is public: a webhook must never reach the studio's own network (SSRF). Checked
    when an endpoint is made and again before every attempt, as DNS may change meanwhile.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a valid URL ({exc})."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http or https URL."
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    try:
        infos = socket.getaddrinfo(parts.hostname, port or default_port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"{parts.hostname} does not resolve ({exc})."
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            return (
                f"{parts.hostname} is a private, loopback or reserved address ({address}); "
                "set WEBHOOK_ALLOW_PRIVATE_URLS to allow it."
            )
    return None


def events_clean(events: list[str]) -> list[str]:
    """The event types, checked and in a stable order; raises EndpointRefused."""
    unknown = sorted(set(events) - set(EventType.values))
    if unknown:
        raise EndpointRefused(
            f"Unknown event type {', '.join(unknown)}; choose from {', '.join(EventType.values)}."
        )
    if not events:
        raise EndpointRefused("Choose at least one event type.")
    return [value for value in EventType.values if value in events]


def endpoint_create(
    *, url: str, events: list[str], owner=None, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (to show once)."""
    events = events_clean(events)
    refusal = url_refusal(url)
    if refusal:
        raise EndpointRefused(refusal)
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        events=events,
        secret=secret,
        owner=owner,
        description=description,
    )
    return endpoint, secret


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Stop sending to the endpoint (its pending deliveries wait until it is enabled again).
    False when it was already disabled."""
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:300]
    )
    endpoint.refresh_from_db()
    return bool(changed)


def endpoint_enable(*, endpoint: WebhookEndpoint) -> bool:
    """Send to the endpoint again: what waited is sent by the periodic job. False when it was
    already enabled."""
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=False).update(
            is_active=True, disabled_at=None, disabled_reason="", failed_in_a_row=0
        )
    endpoint.refresh_from_db()
    return bool(changed)
