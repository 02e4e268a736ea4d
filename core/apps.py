from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Spending"

    def ready(self):
        from core import periodic  # noqa: F401 - registers its job with worker and scheduler
