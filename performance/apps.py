from django.apps import AppConfig


class PerformanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "performance"
    verbose_name = "Performance"

    def ready(self):
        # its actor, found by name when an import is sent (performance.jobs), and its periodic
        # job, registered with the worker and the scheduler
        from performance import periodic, tasks  # noqa: F401
