from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class CatalogConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self):
        # periodic registers its jobs; import_tasks its actor (the workers find both)
        from catalog import import_tasks, periodic, signals  # noqa: F401
        from catalog.health import MilvusCheck
        from catalog.metrics import index_metrics
        from catalog.models import Product
        from core.health import add_readiness_check
        from core.metrics import add_metrics_part

        add_readiness_check("milvus", MilvusCheck)
        add_metrics_part("index", index_metrics)

        post_save.connect(
            signals.product_saved, sender=Product, dispatch_uid="catalog_product_saved"
        )
        post_delete.connect(
            signals.product_deleted, sender=Product, dispatch_uid="catalog_product_deleted"
        )
