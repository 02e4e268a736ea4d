from django.apps import AppConfig


class PerformanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "performance"
    verbose_name = "Performance"

    def ready(self):
        # Its actor, found by name when an import is sent (performance.jobs), and its periodic
        # job, registered with the worker and the scheduler. The loop: proven images join the
        # bestsellers as style references; generation cannot import this app, so it is told
        # where to find them.
        from generation.references import set_proven_finder
        from performance import periodic, tasks  # noqa: F401
        from performance.proven import proven_images

        set_proven_finder(proven_images)
