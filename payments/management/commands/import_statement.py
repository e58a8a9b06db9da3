"""Import a bank statement or SmartDebit report: preview, then import all rows or none."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from payments.models import ImportFormat, StatementAccount
from payments.services.payments import PaymentsNotConfigured
from payments.services.statements import (
    PARTIAL_FILE_RULE,
    StatementError,
    statement_import,
    statement_preview,
)
from payments.sources.statement_rows import account_key


class Command(BaseCommand):
    help = (
        "Import a statement file: camt.052/053/054, MT940, BAI2, OFX, QIF (recognised by "
        "content), or CSV/.xlsx with a saved format. " + PARTIAL_FILE_RULE
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--format", dest="format_name", help="ImportFormat name (CSV/Excel files only)"
        )
        parser.add_argument(
            "--account", help="bank account (IBAN or 'sortcode account') when the file has none"
        )
        parser.add_argument(
            "--user", help="username recorded as uploader (default: first superuser)"
        )
        parser.add_argument("--dry-run", action="store_true", help="preview only")

    def handle(
        self, *args, file, format_name=None, account=None, user=None, dry_run=False, **options
    ):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        import_format = (
            ImportFormat.objects.filter(name=format_name).first() if format_name else None
        )
        statement_account = None
        if account:
            statement_account = StatementAccount.objects.filter(
                account_key__in=[account, account_key(account_id=account)]
            ).first()
            if statement_account is None:
                raise CommandError(f"No bank account {account!r}.")
        if format_name and import_format is None:
            names = ", ".join(ImportFormat.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No import format {format_name!r} (known: {names}).")
        users = get_user_model().objects
        actor = (
            users.filter(username=user).first()
            if user
            else users.filter(is_superuser=True).order_by("id").first()
        )
        if actor is None:
            raise CommandError("No such user; pass --user USERNAME.")
        content = path.read_bytes()
        preview = statement_preview(
            user=actor,
            import_format=import_format,
            statement_account=statement_account,
            filename=path.name,
            content=content,
        )
        if not preview.ok:
            lines = (
                [preview.file_error]
                if preview.file_error
                else [str(e) for e in preview.parsed.errors]
            )
            raise CommandError("File rejected, nothing imported:\n  " + "\n  ".join(lines))
        self.stdout.write(
            f"{len(preview.new_items)} new payment(s), "
            f"{len(preview.duplicate_ids)} duplicate(s), "
            f"{preview.parsed.skipped} row(s) skipped (money out or empty)."
        )
        if dry_run:
            return
        try:
            batch = statement_import(user=actor, batch=preview.batch, content=content)
        except (StatementError, PaymentsNotConfigured) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Imported batch {batch.pk}: {batch.imported_count} payment(s).")
