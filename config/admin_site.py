"""The admin site: Django's, with the dashboard as its home page.

`config.apps.StudioAdminConfig` makes this the default site, so `admin.site` and every
`@admin.register` use it unchanged.
"""

from django.contrib import admin


class StudioAdminSite(admin.AdminSite):
    site_header = "Bestseller promo studio"
    site_title = "Promo studio"
    index_title = "Today"
    # The dashboard first, Django's list of apps and models below it.
    index_template = "admin/dashboard.html"

    def index(self, request, extra_context=None):
        # Imported here: the dashboard reads the apps' admin modules, which register on this
        # site while it is being made.
        from generation.dashboard import dashboard_panels
        from performance.dashboard import performers_panel

        dashboard = dashboard_panels(user=request.user)
        if request.user.has_perm("performance.view_channelday"):
            dashboard["performers"] = performers_panel()
        context = {**(extra_context or {}), "dashboard": dashboard}
        return super().index(request, extra_context=context)
