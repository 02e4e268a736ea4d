from django.apps import AppConfig


class GenerationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "generation"
    verbose_name = "Promo generation"

    def ready(self):
        from core.metrics import add_metrics_part
        from generation import periodic  # noqa: F401 - registers its job with worker and scheduler
        from generation.metrics import asset_metrics

        add_metrics_part("assets", asset_metrics)
