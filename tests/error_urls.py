"""The project's URLs and error handlers, plus two views that fail on purpose (test only)."""

from django.core.exceptions import PermissionDenied
from django.urls import path

from config import urls as project


def broken(request):
    raise RuntimeError("a bug in a view")


def forbidden(request):
    raise PermissionDenied("Only the requester may confirm this import.")


urlpatterns = [
    path("test-errors/broken/", broken),
    path("test-errors/forbidden/", forbidden),
    *project.urlpatterns,
]
handler400 = project.handler400
handler403 = project.handler403
handler404 = project.handler404
handler500 = project.handler500
