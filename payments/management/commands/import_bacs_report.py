"""Apply a Bacs ARUDD / ADDACS / AUDDIS report (XML, as Bacs or SmartDebit provide it)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.services.direct_debit_returns import direct_debit_notices_apply
from payments.sources.bacs_reports import bacs_report_read
from payments.sources.statement_rows import StatementError


class Command(BaseCommand):
    help = (
        "Apply a Bacs report: ARUDD returns reverse the payments they return (compensating "
        "entries, never deletes); ADDACS and AUDDIS notices flag the payer."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            kind, notices = bacs_report_read(path.read_bytes())
        except StatementError as error:
            raise CommandError(str(error)) from None
        result = direct_debit_notices_apply(notices=notices, filename=path.name)
        self.stdout.write(
            f"{kind}: {result.notices} new notice(s), {result.already_known} already known; "
            f"{len(result.reversed)} payment(s) reversed, {len(result.refunds)} compensating "
            f"refund(s) proposed; {len(result.unmatched)} return(s) with no payment here."
        )
