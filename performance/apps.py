from django.apps import AppConfig


class PerformanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "performance"
    verbose_name = "Performance"

    def ready(self):
        # its actor, so web processes find it by name when they send (services._write_import)
        from performance import tasks  # noqa: F401
