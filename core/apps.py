from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Spending"

    def ready(self):
        from django.core.signals import request_finished

        from core import periodic  # noqa: F401 - registers its job with worker and scheduler
        from core.request_log import end_of_request

        request_finished.connect(end_of_request, dispatch_uid="core.request_log.end_of_request")
