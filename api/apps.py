from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API for other systems"

    def ready(self):
        # models load only once the app registry is ready, hence here
        from api import webhook_hooks

        webhook_hooks.connect()
