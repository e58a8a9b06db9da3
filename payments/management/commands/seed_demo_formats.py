"""A saved column mapping for the demo, so a clerk can try the statement upload screen at once
(development only; in production an admin saves each bank's layout in the admin)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments.models import ImportFormat

DEMO_FORMAT = dict(
    name="Demo bank CSV",
    column_map={
        "date": "Date",
        "credit": "Paid in",
        "debit": "Paid out",
        "reference": "Description",
        "payer_name": "Name",
    },
    date_format="%d/%m/%Y",
    currency="GBP",
)


class Command(BaseCommand):
    help = "Save the demo bank statement layout (development only)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("Demo data is never created in production mode.")
        fields = dict(DEMO_FORMAT)
        _format, created = ImportFormat.objects.get_or_create(
            name=fields.pop("name"), defaults=fields
        )
        columns = ", ".join(DEMO_FORMAT["column_map"].values())
        state = "created" if created else "exists"
        self.stdout.write(f"Statement layout '{DEMO_FORMAT['name']}' ({columns}): {state}")
