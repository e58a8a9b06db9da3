"""Pull SmartDebit's collection reports and Bacs reports through its API (where configured)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from payments.services.smartdebit import SmartDebitNotConfigured, smartdebit_pull


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Import SmartDebit collections (one payment per successful collection) and apply its "
        "ARUDD/ADDACS/AUDDIS reports for a window of days (default: the last 7)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_day, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", type=_day, help="last day, YYYY-MM-DD (default today)")

    def handle(self, *args, since=None, until=None, **options):
        try:
            pull = smartdebit_pull(since=since, until=until)
        except SmartDebitNotConfigured as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"{pull.days} day(s): {pull.collected} new collection(s), {pull.refreshed} already "
            f"here, {pull.rejected} rejected; {pull.reports} Bacs report(s), {pull.notices} new "
            f"notice(s), {pull.reversed} payment(s) reversed."
        )
        for error in pull.errors:
            self.stderr.write(error)
        if pull.errors:
            raise CommandError(f"{len(pull.errors)} problem(s); see above.")
