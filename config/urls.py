from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.generic import RedirectView
from django.views.static import serve

from generation.views import published_feed

admin.site.site_header = "Bestseller promo studio"
admin.site.site_title = "Promo studio"
admin.site.index_title = "Catalog and promo images"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("feeds/published.csv", published_feed, {"fmt": "csv"}, name="published_feed_csv"),
    path("feeds/published.json", published_feed, {"fmt": "json"}, name="published_feed_json"),
]
if settings.SERVE_MEDIA:
    # Local development and the browser test; production serves media from S3 or a web server.
    def media(request, path):
        return serve(request, path, document_root=settings.MEDIA_ROOT)  # read per request: tests move it

    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", media))
