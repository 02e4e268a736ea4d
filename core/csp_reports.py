"""Where browsers report what the Content-Security-Policy blocked (its report-uri).

Each report becomes one log line, so a page the policy breaks (a script left inline, an image
from a host the policy does not name) shows up in the logs before somebody complains. Anybody
can post here, so nothing is stored, the body is small and each value is cut short.
"""

from __future__ import annotations

import json
import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger(__name__)

MAX_BYTES = 16 * 1024
FIELDS = ("document-uri", "violated-directive", "blocked-uri", "source-file", "line-number")


@csrf_exempt  # browsers send reports without a token, and nothing here changes state
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BYTES:
        return HttpResponse(status=413)
    try:
        report = json.loads(request.body).get("csp-report")
    except (ValueError, AttributeError):
        report = None
    if not isinstance(report, dict):
        return HttpResponse(status=400)
    logger.warning(
        "CSP blocked: %s",
        ", ".join(f"{name}={str(report.get(name, ''))[:200]!r}" for name in FIELDS),
    )
    return HttpResponse(status=204)
