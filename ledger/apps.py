from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "AIQ ledger mirror"

    def ready(self):
        from ledger.outbox import checks  # noqa: F401 - registers the Q_CLUSTER checks
