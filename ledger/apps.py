from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "AIQ ledger mirror"

    def ready(self):
        # models load only once the app registry is ready, hence imports here
        from ledger.outbox import checks  # noqa: F401 - registers the Q_CLUSTER checks
        from ledger.outbox.kinds import register
        from ledger.outbox.origins import Origin, origin_register
        from ledger.outbox.repair import duplicate_reversal_done, duplicate_reversal_stopped

        register()  # ledger's own command kinds: typed payloads and executors

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
