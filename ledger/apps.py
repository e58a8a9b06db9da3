from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "AIQ ledger mirror"

    def ready(self):
        from ledger.outbox import checks  # noqa: F401 - registers the Q_CLUSTER checks
        from ledger.outbox.origins import Origin, origin_register
        from ledger.outbox.repair import duplicate_reversal_done, duplicate_reversal_stopped

        # a duplicate's reversal: reversed once all its steps are confirmed; open again (saying
        # why) when a step failed or was parked
        origin_register(
            "duplicate",
            Origin(
                confirmed=duplicate_reversal_done,
                failed=duplicate_reversal_stopped,
                parked=duplicate_reversal_stopped,
            ),
        )
