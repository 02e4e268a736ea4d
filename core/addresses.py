"""The address a request came from, for the login lockout and the API's limits.

Without a proxy it is REMOTE_ADDR. Behind a reverse proxy REMOTE_ADDR is the proxy's, the
same for everybody, so one person's failures would lock out the whole office: name the
header the proxy sets (LOGIN_CLIENT_IP_HEADER, e.g. HTTP_X_FORWARDED_FOR) and how many
proxies of ours append to it (LOGIN_TRUSTED_PROXIES). The header is read only when
configured, and from the right: each of our proxies appends the address it saw, so the entry
our first proxy appended is the last one nobody outside could forge. Entries to its left are
whatever the client sent. An entry that is no IP address (a proxy that writes "unknown", a
client that reached the app past the proxy) falls back to REMOTE_ADDR: axes stores the address
in an IP column.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    header = settings.LOGIN_CLIENT_IP_HEADER
    if header:
        entries = [e.strip() for e in request.META.get(header, "").split(",") if e.strip()]
        if len(entries) >= settings.LOGIN_TRUSTED_PROXIES:
            entry = entries[-settings.LOGIN_TRUSTED_PROXIES]
            try:
                return str(ipaddress.ip_address(entry))
            except ValueError:
                pass
    return request.META.get("REMOTE_ADDR", "")
