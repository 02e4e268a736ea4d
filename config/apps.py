"""The admin app with the project's own site (config.admin_site) as `admin.site`."""

from django.contrib.admin.apps import AdminConfig


class StudioAdminConfig(AdminConfig):
    default_site = "config.admin_site.StudioAdminSite"
