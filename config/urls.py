from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from config import errors
from config.api import api
from core.api.problems import not_found_view
from core.csp_reports import csp_report
from core.health import healthz, readyz
from core.media import private_media
from core.metrics import metrics_view
from generation.views import published_feed, published_image

# Who may see which stored files (by top folder); anything else under /media/ is a 404.
MEDIA_PERMISSIONS = {
    "products": "catalog.view_product",
    "promos": "generation.view_generatedasset",
    "scenes": "generation.view_generatedasset",  # a staged image's first step, on its page
    "published": "generation.view_generatedasset",
}

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/v1/<path:rest>", not_found_view),
    path("feeds/published.csv", published_feed, {"fmt": "csv"}, name="published_feed_csv"),
    path("feeds/published.json", published_feed, {"fmt": "json"}, name="published_feed_json"),
    path("published/<path:name>", published_image, name="published_image"),
    path("media/<path:name>", private_media, {"permissions": MEDIA_PERMISSIONS}),
    # For load balancers and Prometheus, without a login (core/health.py, core/metrics.py).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("csp-report/", csp_report, name="csp_report"),  # CONTENT_SECURITY_POLICY's report-uri
]

# The error pages in the admin's look, each saying what to do next (config/errors.py); a
# refused form (CSRF) has its own, CSRF_FAILURE_VIEW in settings.
handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
