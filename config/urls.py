from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import path

from generation.views import published_feed
from django.views.generic import RedirectView

admin.site.site_header = "Bestseller promo studio"
admin.site.site_title = "Promo studio"
admin.site.index_title = "Catalog and promo images"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("feeds/published.csv", published_feed, {"fmt": "csv"}, name="published_feed_csv"),
    path("feeds/published.json", published_feed, {"fmt": "json"}, name="published_feed_json"),
]
# Local media is served by Django only while DEBUG is on; production serves it from S3.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
