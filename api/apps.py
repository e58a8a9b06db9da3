from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API for other systems"

    def ready(self):
        from api import webhook_hooks

        webhook_hooks.connect()
