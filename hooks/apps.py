from django.apps import AppConfig
from django.db.models.signals import post_save


class HooksConfig(AppConfig):
    """Outgoing webhooks. An app of its own rather than part of core: endpoints, events and
    deliveries are one concern with their own tables, admin and actor, fed by catalog and
    generation at their domain points; core stays the shared plumbing both of those use."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "hooks"
    verbose_name = "Webhooks"

    def ready(self):
        # periodic registers its job; tasks its actor (the workers find both)
        from catalog import events as catalog_events
        from catalog.models import Product
        from generation import events as generation_events
        from hooks import events, periodic, tasks  # noqa: F401

        # Receivers record events and deliveries in the sender's transaction.
        post_save.connect(events.product_saved, sender=Product, dispatch_uid="hooks_product_saved")
        catalog_events.products_written.connect(events.products_written, dispatch_uid="hooks_pw")
        catalog_events.import_finished.connect(events.import_finished, dispatch_uid="hooks_if")
        generation_events.asset_moved.connect(events.asset_moved, dispatch_uid="hooks_am")
