from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "AIQ ledger mirror"

    def ready(self):
        # models load only once the app registry is ready, hence imports here
        from ledger.outbox import checks  # noqa: F401 - registers the Q_CLUSTER checks
        from ledger.outbox.kinds import register

        register()  # ledger's own command kinds: typed payloads and executors
