"""The error pages: 400, 403, 404 and 500, and a form refused by the CSRF check, in the admin's
look, each saying what to do next (templates/400.html and its siblings).

config/urls.py names these as handler400…handler500 and settings as CSRF_FAILURE_VIEW. With
DEBUG on Django shows its technical pages instead, as it does for its own handlers. The 500
page is rendered without the request and without the database (whatever failed may be the
database): its context holds only plain values.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.utils.http import urlencode
from django.views import csrf


def _site() -> dict:
    """The admin's names for the page's header and title (attributes: no database)."""
    return {"site_header": admin.site.site_header, "site_title": admin.site.site_title}


def _page(request: HttpRequest, template: str, status: int, **context) -> HttpResponse:
    user = getattr(request, "user", None)  # absent when the request failed before logging in
    signed_in = bool(user and user.is_authenticated)
    return render(
        request,
        template,
        {
            **_site(),
            "status": status,
            "signed_in": signed_in,
            "is_staff": signed_in and user.is_staff,
            "dashboard_url": reverse("admin:index"),
            "login_url": reverse("admin:login")
            + "?"
            + urlencode({"next": request.get_full_path()}),
            **context,
        },
        status=status,
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "400.html", 400, title="The request could not be understood")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(
        request,
        "403.html",
        403,
        title="You may not open this page",
        detail=str(exception),
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "404.html", 404, title="Page not found", request_path=request.path)


def server_error(request: HttpRequest) -> HttpResponse:
    template = loader.get_template("500.html")
    return HttpResponseServerError(
        template.render({**_site(), "status": 500, "title": "Something went wrong on our side"})
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token: usually a page left open across a login or
    logout, or cookies blocked. In DEBUG, Django's own page with the technical reason."""
    if settings.DEBUG:
        return csrf.csrf_failure(request, reason=reason)
    return _page(request, "403_csrf.html", 403, title="The form could not be sent", reason=reason)


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """A login refused after repeated failures (django-axes, core/lockout.py): 429, saying
    how long the lock lasts and who can lift it earlier. Axes' AXES_LOCKOUT_CALLABLE."""
    minutes = settings.LOGIN_COOLOFF_MINUTES
    response = _page(
        request,
        "locked_out.html",
        429,
        title="Too many failed logins",
        cooloff_minutes=minutes,
        per_user=settings.LOGIN_FAILURES_PER_USER,
        per_address=settings.LOGIN_FAILURES_PER_ADDRESS,
        login_url=reverse("admin:login"),  # not back to the refused POST
    )
    response["Retry-After"] = str(minutes * 60)
    return response
